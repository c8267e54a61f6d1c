with customers as (
    select * from {{ ref('customer_single_view') }}
),

totals as (
    select count(*) as customers, sum(total_net_sales) as net_sales
    from customers
),

by_segment as (
    select
        segment,
        count(*) as customers,
        sum(total_net_sales) as net_sales,
        sum(total_gross_margin) as gross_margin,
        avg(days_since_last_order) as avg_days_since_last_order,
        avg(order_count) as avg_order_count,
        avg(total_net_sales) as avg_net_sales,
        avg(r_score) as avg_r_score,
        avg(f_score) as avg_f_score,
        avg(m_score) as avg_m_score,
        sum(case when is_pareto then 1 else 0 end) as pareto_customers
    from customers
    group by segment
)

select
    segment_map.priority,
    segment_map.segment,
    coalesce(by_segment.customers, 0) as customers,
    coalesce(by_segment.customers, 0) / cast(totals.customers as double) as customer_share,
    coalesce(by_segment.net_sales, 0) as net_sales,
    coalesce(by_segment.net_sales, 0) / nullif(totals.net_sales, 0) as net_sales_share,
    coalesce(by_segment.gross_margin, 0) as gross_margin,
    by_segment.avg_days_since_last_order,
    by_segment.avg_order_count,
    by_segment.avg_net_sales,
    by_segment.avg_r_score,
    by_segment.avg_f_score,
    by_segment.avg_m_score,
    coalesce(by_segment.pareto_customers, 0) as pareto_customers,
    segment_map.action as suggested_action,
    {{ as_of_date() }} as as_of_date
from {{ ref('rfm_segment_map') }} as segment_map
cross join totals
left join by_segment
    on segment_map.segment = by_segment.segment
