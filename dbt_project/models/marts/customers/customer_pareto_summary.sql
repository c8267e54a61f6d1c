with customers as (
    select * from {{ ref('customer_single_view') }}
)

select
    {{ as_of_date() }} as as_of_date,
    count(*) as customers,
    sum(case when is_pareto then 1 else 0 end) as pareto_customers,
    sum(case when is_pareto then 1 else 0 end) / cast(count(*) as double) as pareto_customer_share,
    sum(case when is_pareto then total_net_sales else 0 end)
    / nullif(sum(case when total_net_sales > 0 then total_net_sales else 0 end), 0)
        as pareto_net_sales_share
from customers
