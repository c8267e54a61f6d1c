{#- The order lines aggregated to purchase days, the unit lifetimes counts in (freq='D'). Both the
    customer summary and the backtest summary start from it, so the order lines are scanned once. -#}
select
    customer_code,
    date,
    sum(net_sales_amount) as net_sales,
    sum(gross_margin_amount) as gross_margin,
    -- an order has one date, so a customer's orders are the sum of each day's distinct orders
    count(distinct order_id) as orders
from {{ ref('int_order_lines_priced') }}
where date <= {{ as_of_date() }}
group by customer_code, date
