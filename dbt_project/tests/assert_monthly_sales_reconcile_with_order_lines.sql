{{ config(meta={"dagster": {"ref": {"name": "fact_sales_monthly"}}}) }}
{#- Integrity: fact_sales_monthly is fact_sales re-grained, so both add up to the same quantity
    in every fiscal year. Returns the fiscal years that differ. -#}
with order_lines as (
    select fiscal_year, sum(sold_quantity) as sold_quantity
    from {{ ref('fact_sales') }}
    group by fiscal_year
),

monthly as (
    select fiscal_year, sum(sold_quantity) as sold_quantity
    from {{ ref('fact_sales_monthly') }}
    group by fiscal_year
)

select
    coalesce(order_lines.fiscal_year, monthly.fiscal_year) as fiscal_year,
    order_lines.sold_quantity as order_lines_quantity,
    monthly.sold_quantity as monthly_quantity
from order_lines
full outer join monthly
    on order_lines.fiscal_year = monthly.fiscal_year
where
    order_lines.sold_quantity is null
    or monthly.sold_quantity is null
    or order_lines.sold_quantity <> monthly.sold_quantity
