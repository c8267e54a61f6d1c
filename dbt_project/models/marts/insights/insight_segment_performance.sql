{#- Customer segments by platform x channel x region: size, purchase frequency, average order
    value, revenue and margin contribution, retention and growth.

    Windows: "last 12m" = the 12 months up to the as-of date, "prior 12m" = the 12 months before.
    retention_rate = customers who ordered in the prior 12m and again in the last 12m / customers
    who ordered in the prior 12m.

    Growth opportunity rule (growth_quadrant), over the segments with sales in the last 12m:
    - small = the segment's share of last-12m net sales is below the average share (1 / segments);
    - fast  = its net-sales growth (last 12m vs prior 12m) beats the business's overall growth
              (a segment with no prior-12m sales counts as fast).
    small + fast = 'growth opportunity', large + fast = 'star', large + slow = 'core',
    small + slow = 'watch'; no sales in the last 12m = 'dormant'.

    Read from the purchase days (int_purchase_days_aggregated: 3.1 million rows at a million
    customers) rather than the 6.8 million order lines: every figure here is a sum over a
    customer's days or a flag per customer. A segment's orders are the sum of its customer-days'
    distinct orders, as customer_summary counts them (an order has one customer and one date). -#}
with lines as (
    select
        days.customer_code,
        days.orders,
        days.net_sales as net_sales_amount,
        days.gross_margin as gross_margin_amount,
        customers.platform,
        customers.channel,
        customers.region,
        days.date > cast({{ dbt.dateadd('month', -12, as_of_date()) }} as date) as is_last_12m,
        days.date > cast({{ dbt.dateadd('month', -24, as_of_date()) }} as date)
        and days.date <= cast({{ dbt.dateadd('month', -12, as_of_date()) }} as date) as is_prior_12m
    from {{ ref('int_purchase_days_aggregated') }} as days
    inner join {{ ref('stg_raw__customers') }} as customers
        on days.customer_code = customers.customer_code
    where days.date <= {{ as_of_date() }}
),

per_customer as (
    select
        platform,
        channel,
        region,
        customer_code,
        max(case when is_last_12m then 1 else 0 end) as active_last_12m,
        max(case when is_prior_12m then 1 else 0 end) as active_prior_12m
    from lines
    group by platform, channel, region, customer_code
),

retention as (
    select
        platform,
        channel,
        region,
        sum(active_last_12m) as active_customers_last_12m,
        sum(active_prior_12m) as active_customers_prior_12m,
        sum(active_prior_12m * active_last_12m) as retained_customers
    from per_customer
    group by platform, channel, region
),

by_segment as (
    select
        platform,
        channel,
        region,
        count(distinct customer_code) as customers,
        cast(sum(orders) as bigint) as orders,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin,
        sum(case when is_last_12m then net_sales_amount else 0 end) as net_sales_last_12m,
        sum(case when is_prior_12m then net_sales_amount else 0 end) as net_sales_prior_12m
    from lines
    group by platform, channel, region
),

totals as (
    select
        sum(net_sales) as net_sales,
        sum(gross_margin) as gross_margin,
        sum(net_sales_last_12m) as net_sales_last_12m,
        sum(net_sales_prior_12m) as net_sales_prior_12m,
        sum(case when net_sales_last_12m > 0 then 1 else 0 end) as segments_with_recent_sales
    from by_segment
),

measured as (
    select
        by_segment.platform,
        by_segment.channel,
        by_segment.region,
        by_segment.customers,
        retention.active_customers_last_12m,
        by_segment.orders,
        by_segment.orders / cast(by_segment.customers as double) as purchase_frequency,
        by_segment.net_sales / nullif(by_segment.orders, 0) as avg_order_value,
        by_segment.net_sales,
        by_segment.net_sales / nullif(totals.net_sales, 0) as net_sales_share,
        by_segment.gross_margin,
        by_segment.gross_margin / nullif(by_segment.net_sales, 0) as gross_margin_pct,
        by_segment.gross_margin / nullif(totals.gross_margin, 0) as gross_margin_share,
        retention.active_customers_prior_12m,
        retention.retained_customers,
        retention.retained_customers / nullif(cast(retention.active_customers_prior_12m as double), 0)
            as retention_rate,
        by_segment.net_sales_last_12m,
        by_segment.net_sales_prior_12m,
        by_segment.net_sales_last_12m / nullif(totals.net_sales_last_12m, 0) as net_sales_share_last_12m,
        (by_segment.net_sales_last_12m - by_segment.net_sales_prior_12m)
        / nullif(by_segment.net_sales_prior_12m, 0) as net_sales_growth_pct,
        (totals.net_sales_last_12m - totals.net_sales_prior_12m)
        / nullif(totals.net_sales_prior_12m, 0) as total_net_sales_growth_pct,
        1 / nullif(cast(totals.segments_with_recent_sales as double), 0) as average_segment_share
    from by_segment
    inner join retention
        on
            by_segment.platform = retention.platform
            and by_segment.channel = retention.channel
            and by_segment.region = retention.region
    cross join totals
),

classified as (
    select
        *,
        net_sales_share_last_12m < average_segment_share as is_small,
        (net_sales_prior_12m = 0 and net_sales_last_12m > 0)
        or net_sales_growth_pct > coalesce(total_net_sales_growth_pct, 0) as is_fast
    from measured
)

select
    concat(platform, '|', channel, '|', region) as customer_segment_key,
    platform,
    channel,
    region,
    customers,
    active_customers_last_12m,
    orders,
    purchase_frequency,
    avg_order_value,
    net_sales,
    net_sales_share,
    gross_margin,
    gross_margin_pct,
    gross_margin_share,
    active_customers_prior_12m,
    retained_customers,
    retention_rate,
    net_sales_last_12m,
    net_sales_prior_12m,
    net_sales_share_last_12m,
    net_sales_growth_pct,
    total_net_sales_growth_pct,
    average_segment_share,
    case
        when net_sales_last_12m <= 0 then 'dormant'
        when is_small and is_fast then 'growth opportunity'
        when is_fast then 'star'
        when is_small then 'watch'
        else 'core'
    end as growth_quadrant,
    coalesce(net_sales_last_12m > 0 and is_small and is_fast, false) as is_growth_opportunity,
    {{ as_of_date() }} as as_of_date
from classified
