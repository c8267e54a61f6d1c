{#- Acquisition cohorts (like fivetran's shopify__customer_cohorts, aggregated): one row per
    first-order month and month since it, from month 0 up to the as-of month, also for months in
    which nobody in the cohort ordered.
    Read from the purchase days (int_purchase_days_aggregated), less than half as many rows as
    the order lines; a month's orders are the sum of its customer-days' distinct orders, as
    customer_summary counts them (an order has one customer and one date). -#}
with lines as (
    select
        customer_code,
        orders,
        cast({{ dbt.date_trunc('month', 'date') }} as date) as order_month,
        net_sales as net_sales_amount,
        gross_margin as gross_margin_amount
    from {{ ref('int_purchase_days_aggregated') }}
    where date <= {{ as_of_date() }}
),

first_orders as (
    select customer_code, min(order_month) as cohort_month
    from lines
    group by customer_code
),

cohorts as (
    select cohort_month, count(*) as cohort_customers
    from first_orders
    group by cohort_month
),

months as (
    select distinct month_start_date as calendar_month
    from {{ ref('dim_date') }}
    where date <= {{ as_of_date() }}
),

spine as (
    select
        cohorts.cohort_month,
        cohorts.cohort_customers,
        months.calendar_month,
        {{ dbt.datediff('cohorts.cohort_month', 'months.calendar_month', 'month') }} as months_since_first_order
    from cohorts
    inner join months
        on months.calendar_month >= cohorts.cohort_month
),

activity as (
    select
        first_orders.cohort_month,
        lines.order_month,
        count(distinct lines.customer_code) as active_customers,
        cast(sum(lines.orders) as bigint) as orders,
        sum(lines.net_sales_amount) as net_sales,
        sum(lines.gross_margin_amount) as gross_margin
    from lines
    inner join first_orders
        on lines.customer_code = first_orders.customer_code
    group by first_orders.cohort_month, lines.order_month
),

joined as (
    select
        spine.cohort_month,
        spine.calendar_month,
        cast(spine.months_since_first_order as integer) as months_since_first_order,
        spine.cohort_customers,
        coalesce(activity.active_customers, 0) as active_customers,
        coalesce(activity.orders, 0) as orders,
        coalesce(activity.net_sales, 0) as net_sales,
        coalesce(activity.gross_margin, 0) as gross_margin
    from spine
    left join activity
        on
            spine.cohort_month = activity.cohort_month
            and spine.calendar_month = activity.order_month
)

select
    concat(cast(cohort_month as string), '|', cast(months_since_first_order as string)) as cohort_month_key,
    cohort_month,
    calendar_month,
    months_since_first_order,
    cohort_customers,
    active_customers,
    active_customers / cast(cohort_customers as double) as retention_rate,
    orders,
    net_sales,
    gross_margin,
    sum(net_sales) over (
        partition by cohort_month order by months_since_first_order
        rows between unbounded preceding and current row
    ) as cumulative_net_sales,
    sum(net_sales) over (
        partition by cohort_month order by months_since_first_order
        rows between unbounded preceding and current row
    ) / cohort_customers as cumulative_net_sales_per_customer,
    {{ as_of_date() }} as as_of_date
from joined
