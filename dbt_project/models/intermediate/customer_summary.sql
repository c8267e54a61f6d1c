{#- Lifetime metrics per customer as of the refresh's as-of date, and the frequency / recency / T /
    monetary summary exactly as lifetimes.utils.summary_data_from_transaction_data computes it with
    freq='D': purchases are counted per day, the first purchase day is not a repeat, and monetary
    value is the mean of the repeat days' totals (0 without repeats). -#}
with purchase_day_logs as (
    select
        *,
        {{ log_spend('net_sales') }} as log_net_sales,
        {{ log_spend('gross_margin') }} as log_gross_margin
    from {{ ref('int_purchase_days_aggregated') }}
),

purchase_days as (
    select
        *,
        {{ log_spend_deviation('net_sales', 'customer_code') }} as log_net_sales_deviation,
        {{ log_spend_deviation('gross_margin', 'customer_code') }} as log_gross_margin_deviation
    from purchase_day_logs
),

lifetime as (
    select
        customer_code,
        min(date) as first_order_date,
        max(date) as last_order_date,
        count(*) as purchase_day_count,
        sum(orders) as order_count,
        sum(net_sales) as total_net_sales,
        sum(gross_margin) as total_gross_margin,
        -- the first day's totals, to take them out of the repeat-day mean below (amounts are
        -- decimals, so total - first is exact and equals summing the repeat days)
        min_by(net_sales, date) as first_day_net_sales,
        min_by(gross_margin, date) as first_day_gross_margin,
        -- Log spend per purchase day (all days, the first included) for the log-normal spend
        -- model: days with positive spend, their mean log and the variance of the logs.
        {{ log_spend_statistics('net_sales') }},
        {{ log_spend_statistics('gross_margin') }}
    from purchase_days
    group by customer_code
),

final as (
    select
        customers.customer_code,
        lifetime.customer_code is not null as has_orders,
        lifetime.first_order_date,
        lifetime.last_order_date,
        coalesce(lifetime.order_count, 0) as order_count,
        coalesce(lifetime.purchase_day_count, 0) as purchase_day_count,
        {{ dbt.datediff('lifetime.last_order_date', as_of_date(), 'day') }} as days_since_last_order,
        coalesce(lifetime.total_net_sales, 0) as total_net_sales,
        coalesce(lifetime.total_gross_margin, 0) as total_gross_margin,
        {{ divide('lifetime.total_net_sales', 'lifetime.order_count') }} as avg_order_net_sales,
        {{ divide('lifetime.total_gross_margin', 'lifetime.order_count') }}
            as avg_order_gross_margin,
        -- The lifetimes summary (time unit: days); null for customers without orders.
        lifetime.purchase_day_count - 1 as frequency,
        {{ dbt.datediff('lifetime.first_order_date', 'lifetime.last_order_date', 'day') }} as recency,
        {{ dbt.datediff('lifetime.first_order_date', as_of_date(), 'day') }} as t,
        case
            when lifetime.purchase_day_count > 1
                then {{ divide(
                    '(lifetime.total_net_sales - lifetime.first_day_net_sales)',
                    '(lifetime.purchase_day_count - 1)'
                ) }}
            when lifetime.customer_code is not null then 0
        end as monetary_value_net_sales,
        case
            when lifetime.purchase_day_count > 1
                then {{ divide(
                    '(lifetime.total_gross_margin - lifetime.first_day_gross_margin)',
                    '(lifetime.purchase_day_count - 1)'
                ) }}
            when lifetime.customer_code is not null then 0
        end as monetary_value_gross_margin,
        coalesce(lifetime.log_net_sales_days, 0) as log_net_sales_days,
        lifetime.log_net_sales_mean,
        lifetime.log_net_sales_var,
        coalesce(lifetime.log_gross_margin_days, 0) as log_gross_margin_days,
        lifetime.log_gross_margin_mean,
        lifetime.log_gross_margin_var,
        {{ as_of_date() }} as as_of_date
    from {{ ref('stg_raw__customers') }} as customers
    left join lifetime
        on customers.customer_code = lifetime.customer_code
)

select * from final
