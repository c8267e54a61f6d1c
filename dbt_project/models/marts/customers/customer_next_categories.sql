{#- Next categories: for each customer with orders, the top 3 product categories that customers
    of the same RFM segment buy and this customer has not bought yet.
    score = the category's penetration in the segment (share of the segment's customers who
    bought it); ties by the segment's net sales in the category, then the category name.
    Size: customers x categories not yet bought (about 1M x 20 rows at 1M customers), ranked by
    one window partitioned by customer; nothing quadratic. -#}
with segments as (
    select customer_code, segment
    from {{ source('analytics', 'customer_rfm') }}
    where r_score > 0
),

bought as (
    select customer_code, category, net_sales
    from {{ ref('customer_category_spend') }}
),

segment_sizes as (
    select segment, count(*) as segment_customers
    from segments
    group by segment
),

popularity as (
    select
        segments.segment,
        bought.category,
        count(*) as buyers,
        sum(bought.net_sales) as segment_net_sales
    from bought
    inner join segments
        on bought.customer_code = segments.customer_code
    group by segments.segment, bought.category
),

candidates as (
    select
        segments.customer_code,
        segments.segment,
        popularity.category,
        popularity.buyers,
        popularity.buyers / cast(segment_sizes.segment_customers as double) as score,
        popularity.segment_net_sales
    from segments
    inner join segment_sizes
        on segments.segment = segment_sizes.segment
    inner join popularity
        on segments.segment = popularity.segment
    left join bought
        on segments.customer_code = bought.customer_code
        and popularity.category = bought.category
    where bought.customer_code is null
),

ranked as (
    select
        customer_code,
        segment,
        category,
        buyers,
        score,
        row_number() over (
            partition by customer_code
            order by score desc, segment_net_sales desc, category
        ) as recommendation_rank
    from candidates
)

select
    concat(customer_code, '|', cast(recommendation_rank as string)) as recommendation_key,
    customer_code,
    recommendation_rank,
    category,
    segment,
    buyers as segment_buyers,
    score,
    {{ as_of_date() }} as as_of_date
from ranked
where recommendation_rank <= 3
