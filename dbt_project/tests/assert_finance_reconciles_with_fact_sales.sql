{{ config(meta={"dagster": {"ref": {"name": "insight_finance_monthly"}}}) }}
{#- The monthly P&L adds up to the order lines, and margin = net sales - cost on every row. -#}
with finance as (
    select
        sum(net_sales) as net_sales,
        sum(gross_margin) as gross_margin,
        sum(case when gross_margin <> net_sales - manufacturing_cost then 1 else 0 end) as bad_rows
    from {{ ref('insight_finance_monthly') }}
),

lines as (
    select sum(net_sales_amount) as net_sales, sum(gross_margin_amount) as gross_margin
    from {{ ref('fact_sales') }}
)

select *
from finance
cross join lines
where
    finance.bad_rows > 0
    or coalesce(finance.net_sales, 0) <> coalesce(lines.net_sales, 0)
    or coalesce(finance.gross_margin, 0) <> coalesce(lines.gross_margin, 0)
