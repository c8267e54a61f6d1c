{#- A suggested discount per customer, targeted by expected future margin and never below cost.

    1. Expected 12-month margin = expected purchase days in the next 365 days x expected margin
       per purchase day, from the CLTV outputs. With PIPELINE_CLTV_SPEND=revenue the expected
       order value is revenue, so it is converted with the customer's lifetime margin rate.
       Null when the CLTV columns are null (no model fitted): such a customer gets no offer.
    2. Eligible: the top 30% of the customers with a prediction by expected margin. A
       customer's rank is the share of predicted customers with a strictly higher expected margin,
       so ties share the outcome. A one-time buyer qualifies only through its expected margin:
       BG/NBD's P(alive) = 1 for every one-time buyer plays no part in who is eligible.
    3. The offer, for eligible customers, first match:
         P(alive) < 0.5          -> 15% 'win back'        (valuable, but probably slipping away)
         no repeat purchase yet  ->  5% 'second purchase' (nothing to reward loyalty for yet)
         otherwise               ->  5% 'loyalty reward'
    4. Cap: the discount never exceeds the customer's lifetime gross margin rate
       (gross margin / net sales), rounded down to a whole percent, so a discounted order still
       covers its manufacturing cost. A customer without positive margin gets 0% ('no margin');
       a base discount cut by the cap is flagged is_capped_by_margin. -#}
{%- set eligible_share = 0.30 -%}
{%- set alive_threshold = 0.5 -%}

with cltv as (
    select
        customer_code,
        value_tier,
        p_alive,
        expected_purchases_365d,
        expected_order_value,
        clv_12m
    from {{ source('analytics', 'customer_cltv') }}
),

summary as (
    select customer_code, has_orders, frequency, total_net_sales, total_gross_margin
    from {{ ref('customer_summary') }}
),

valued as (
    select
        summary.customer_code,
        summary.has_orders,
        summary.frequency,
        coalesce(cltv.value_tier, 'none') as value_tier,
        cltv.p_alive,
        cltv.expected_purchases_365d,
        cltv.clv_12m,
        summary.total_gross_margin / nullif(summary.total_net_sales, 0) as gross_margin_rate,
        cltv.expected_purchases_365d
        {%- if var('cltv_spend') == 'revenue' %}
            * cltv.expected_order_value * summary.total_gross_margin / nullif(summary.total_net_sales, 0)
        {%- else %}
            * cltv.expected_order_value
        {%- endif %} as expected_margin_12m
    from summary
    left join cltv
        on summary.customer_code = cltv.customer_code
),

predicted as (
    select
        customer_code,
        rank() over (order by expected_margin_12m desc) - 1 as customers_above,
        count(*) over () as predicted_customers
    from valued
    where expected_margin_12m is not null and p_alive is not null
),

based as (
    select
        valued.*,
        predicted.customers_above / cast(predicted.predicted_customers as double)
            as expected_margin_rank_share,
        case
            when predicted.customer_code is null then 'no prediction'
            when predicted.customers_above >= {{ eligible_share }} * predicted.predicted_customers
                then 'not eligible'
            when valued.p_alive < {{ alive_threshold }} then 'win back'
            when valued.frequency = 0 then 'second purchase'
            else 'loyalty reward'
        end as offer
    from valued
    left join predicted
        on valued.customer_code = predicted.customer_code
),

discounted as (
    select
        *,
        case offer
            when 'win back' then 0.15
            when 'second purchase' then 0.05
            when 'loyalty reward' then 0.05
            else 0.0
        end as base_discount_pct
    from based
),

capped as (
    select
        *,
        case
            when coalesce(gross_margin_rate, 0) <= 0 then 0.0
            else least(base_discount_pct, floor(gross_margin_rate * 100) / 100)
        end as suggested_discount_pct
    from discounted
)

select
    customer_code,
    value_tier,
    p_alive,
    expected_purchases_365d,
    clv_12m,
    expected_margin_12m,
    expected_margin_rank_share,
    gross_margin_rate,
    cast(base_discount_pct as double) as base_discount_pct,
    cast(suggested_discount_pct as double) as suggested_discount_pct,
    suggested_discount_pct < base_discount_pct as is_capped_by_margin,
    suggested_discount_pct > 0 as is_offer,
    case
        when not has_orders then 'no orders'
        when base_discount_pct = 0 then offer
        when suggested_discount_pct <= 0 then 'no margin'
        else offer
    end as discount_reason,
    {{ as_of_date() }} as as_of_date
from capped
