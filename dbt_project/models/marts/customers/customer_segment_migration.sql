{#- From the previous refresh to this one: customers who were not in the previous refresh come
    from 'New'. Without a previous refresh every customer comes from 'New'. -#}
with history as (
    select * from {{ ref('customer_segment_history') }}
),

previous_refresh as (
    select max(as_of_date) as as_of_date
    from history
    where as_of_date < {{ as_of_date() }}
),

current_segments as (
    select customer_code, segment, total_net_sales
    from history
    where as_of_date = {{ as_of_date() }}
),

previous_segments as (
    select history.customer_code, history.segment, history.total_net_sales
    from history
    inner join previous_refresh
        on history.as_of_date = previous_refresh.as_of_date
),

moves as (
    select
        coalesce(previous_segments.segment, 'New') as from_segment,
        current_segments.segment as to_segment,
        current_segments.total_net_sales,
        current_segments.total_net_sales - coalesce(previous_segments.total_net_sales, 0)
            as net_sales_since_previous
    from current_segments
    left join previous_segments
        on current_segments.customer_code = previous_segments.customer_code
)

select
    {{ as_of_date() }} as as_of_date,
    (select as_of_date from previous_refresh) as previous_as_of_date,
    from_segment,
    to_segment,
    concat(from_segment, ' -> ', to_segment) as migration,
    from_segment = to_segment as is_unchanged,
    count(*) as customers,
    sum(total_net_sales) as total_net_sales,
    sum(net_sales_since_previous) as net_sales_since_previous
from moves
group by from_segment, to_segment
