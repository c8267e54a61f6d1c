{#- Lifetime metrics per customer as of the refresh's as-of date, and the frequency / recency / T /
    monetary summary exactly as lifetimes.utils.summary_data_from_transaction_data computes it with
    freq='D': purchases are counted per day, the first purchase day is not a repeat, and monetary
    value is the mean of the repeat days' totals (0 without repeats). -#}
with lines as (
    select
        customer_code,
        date,
        order_id,
        net_sales_amount,
        gross_margin_amount
    from {{ ref('fact_sales') }}
    where date <= {{ as_of_date() }}
),

purchase_days as (
    select
        customer_code,
        date,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin
    from lines
    group by customer_code, date
),

lifetime as (
    select
        customer_code,
        min(date) as first_order_date,
        max(date) as last_order_date,
        count(*) as purchase_day_count,
        sum(net_sales) as total_net_sales,
        sum(gross_margin) as total_gross_margin
    from purchase_days
    group by customer_code
),

orders as (
    select
        customer_code,
        count(distinct order_id) as order_count
    from lines
    group by customer_code
),

repeat_days as (
    select
        purchase_days.customer_code,
        avg(purchase_days.net_sales) as monetary_value_net_sales,
        avg(purchase_days.gross_margin) as monetary_value_gross_margin
    from purchase_days
    inner join lifetime
        on purchase_days.customer_code = lifetime.customer_code
    where purchase_days.date > lifetime.first_order_date
    group by purchase_days.customer_code
),

final as (
    select
        customers.customer_code,
        lifetime.customer_code is not null as has_orders,
        lifetime.first_order_date,
        lifetime.last_order_date,
        coalesce(orders.order_count, 0) as order_count,
        coalesce(lifetime.purchase_day_count, 0) as purchase_day_count,
        {{ dbt.datediff('lifetime.last_order_date', as_of_date(), 'day') }} as days_since_last_order,
        coalesce(lifetime.total_net_sales, 0) as total_net_sales,
        coalesce(lifetime.total_gross_margin, 0) as total_gross_margin,
        lifetime.total_net_sales / orders.order_count as avg_order_net_sales,
        lifetime.total_gross_margin / orders.order_count as avg_order_gross_margin,
        -- The lifetimes summary (time unit: days); null for customers without orders.
        lifetime.purchase_day_count - 1 as frequency,
        {{ dbt.datediff('lifetime.first_order_date', 'lifetime.last_order_date', 'day') }} as recency,
        {{ dbt.datediff('lifetime.first_order_date', as_of_date(), 'day') }} as t,
        case
            when lifetime.customer_code is null then null
            else coalesce(repeat_days.monetary_value_net_sales, 0)
        end as monetary_value_net_sales,
        case
            when lifetime.customer_code is null then null
            else coalesce(repeat_days.monetary_value_gross_margin, 0)
        end as monetary_value_gross_margin,
        {{ as_of_date() }} as as_of_date
    from {{ ref('dim_customer') }} as customers
    left join lifetime
        on customers.customer_code = lifetime.customer_code
    left join orders
        on customers.customer_code = orders.customer_code
    left join repeat_days
        on customers.customer_code = repeat_days.customer_code
)

select * from final
