with customers as (
    select * from {{ ref('customer_single_view') }}
    where cluster_id is not null
)

select
    cluster_id,
    cluster_name,
    segment,
    count(*) as customers,
    sum(total_net_sales) as net_sales,
    count(*) / cast(sum(count(*)) over (partition by cluster_id) as double) as share_of_cluster,
    count(*) / cast(sum(count(*)) over (partition by segment) as double) as share_of_segment,
    {{ as_of_date() }} as as_of_date
from customers
group by cluster_id, cluster_name, segment
