{#- The order lines aggregated to purchase days, the unit lifetimes counts in (freq='D'). Both the
    customer summary and the backtest summary start from it, so the order lines are scanned once.
    Two plain aggregations, orders first: count(distinct order_id) per day made DuckDB aggregate
    the lines twice and join the two results (a third more CPU). Sums of decimals are exact, so
    the day's totals are the same either way. -#}
with order_totals as (
    select
        customer_code,
        date,
        order_id,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin
    from {{ ref('int_order_lines_priced') }}
    where date <= {{ as_of_date() }}
    group by customer_code, date, order_id
)

select
    customer_code,
    date,
    sum(net_sales) as net_sales,
    sum(gross_margin) as gross_margin,
    -- an order has one date, so a customer's orders are the sum of each day's distinct orders
    count(order_id) as orders
from order_totals
group by customer_code, date
