{#- One wide row per customer for BI. PII is kept out or masked: no name, no full email, no date
    of birth (an age band instead). Model outputs (RFM, CLTV, clusters) join in here: a new one is one more CTE and join. -#}
with customers as (
    select * from {{ ref('dim_customer') }}
),

summary as (
    select * from {{ ref('customer_summary') }}
),

rfm as (
    select * from {{ source('analytics', 'customer_rfm') }}
),

top_category as (
    select customer_code, category as top_category, share_of_net_sales as top_category_share
    from {{ ref('customer_category_spend') }}
    where category_rank = 1
),

cltv as (
    select * from {{ source('analytics', 'customer_cltv') }}
),

clusters as (
    select * from {{ source('analytics', 'customer_clusters') }}
),

next_category as (
    select customer_code, category as next_best_category, score as next_best_category_score
    from {{ ref('customer_next_categories') }}
    where recommendation_rank = 1
),

discounts as (
    select customer_code, expected_margin_12m, suggested_discount_pct, discount_reason, is_offer
    from {{ ref('customer_discount_offers') }}
),

segment_map as (
    select segment, action from {{ ref('rfm_segment_map') }}
),

ages as (
    select
        customer_code,
        {{ dbt.datediff('date_of_birth', as_of_date(), 'year') }} as age_years
    from customers
),

final as (
    select
        customers.customer_code,
        customers.platform,
        customers.channel,
        customers.market,
        customers.sub_zone,
        customers.region,
        customers.city,
        customers.occupation,
        case
            when ages.age_years is null then 'unknown'
            when ages.age_years < 25 then 'under 25'
            when ages.age_years < 35 then '25-34'
            when ages.age_years < 45 then '35-44'
            when ages.age_years < 55 then '45-54'
            when ages.age_years < 65 then '55-64'
            else '65+'
        end as age_band,
        {{ mask_email('customers.email') }} as email_masked,
        summary.has_orders,
        summary.first_order_date,
        summary.last_order_date,
        summary.order_count,
        summary.days_since_last_order,
        summary.total_net_sales,
        summary.total_gross_margin,
        summary.avg_order_net_sales,
        summary.avg_order_gross_margin,
        summary.frequency,
        summary.recency,
        summary.t,
        rfm.r_score,
        rfm.f_score,
        rfm.m_score,
        rfm.fm_score,
        rfm.is_new_customer,
        concat(
            cast(rfm.r_score as string), cast(rfm.f_score as string), cast(rfm.m_score as string)
        ) as rfm_cell,
        rfm.segment,
        rfm.is_pareto,
        top_category.top_category,
        top_category.top_category_share,
        segment_map.action as suggested_action,
        cltv.p_alive,
        cltv.expected_purchases_90d,
        cltv.expected_purchases_365d,
        cltv.expected_order_value,
        cltv.clv_12m,
        cltv.value_tier,
        clusters.cluster_id,
        clusters.cluster_name,
        next_category.next_best_category,
        next_category.next_best_category_score,
        discounts.expected_margin_12m,
        discounts.is_offer,
        discounts.suggested_discount_pct,
        discounts.discount_reason,
        {{ as_of_date() }} as as_of_date
    from customers
    inner join summary
        on customers.customer_code = summary.customer_code
    inner join rfm
        on customers.customer_code = rfm.customer_code
    left join ages
        on customers.customer_code = ages.customer_code
    left join top_category
        on customers.customer_code = top_category.customer_code
    left join segment_map
        on rfm.segment = segment_map.segment
    left join cltv
        on customers.customer_code = cltv.customer_code
    left join clusters
        on customers.customer_code = clusters.customer_code
    left join next_category
        on customers.customer_code = next_category.customer_code
    left join discounts
        on customers.customer_code = discounts.customer_code
)

select * from final
