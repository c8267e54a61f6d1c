{{ config(meta={"dagster": {"ref": {"name": "fact_sales"}}}) }}
{#- Integrity: pricing joins must neither drop nor duplicate order lines. Returns a row when the
    row count or the quantity of fact_sales differs from the staged order lines. -#}
with staged as (
    select count(*) as n_lines, sum(sold_quantity) as sold_quantity
    from {{ ref('stg_raw__order_lines') }}
),

facts as (
    select count(*) as n_lines, sum(sold_quantity) as sold_quantity
    from {{ ref('fact_sales') }}
)

select
    staged.n_lines as staged_lines,
    facts.n_lines as fact_lines,
    staged.sold_quantity as staged_quantity,
    facts.sold_quantity as fact_quantity
from staged
cross join facts
where
    staged.n_lines <> facts.n_lines
    or coalesce(staged.sold_quantity, 0) <> coalesce(facts.sold_quantity, 0)
