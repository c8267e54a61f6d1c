{#- A suggested discount per customer, by a rule that never discounts below cost.

    1. Base discount from the CLTV value tier and P(alive) (alive = P(alive) >= 0.5):
         high   & at risk -> 15% 'win back'       high   & alive -> 5% 'loyalty reward'
         medium & at risk -> 10% 'win back'       medium & alive -> 5% 'loyalty reward'
         low or none (no orders)                  -> 0% 'no discount'
    2. Cap: the discount never exceeds the customer's lifetime gross margin rate
       (gross margin / net sales), rounded down to a whole percent, so a discounted order still
       covers its manufacturing cost. A customer without positive margin gets 0%
       ('no margin'); a base discount cut by the cap is flagged is_capped_by_margin. -#}
with cltv as (
    select customer_code, value_tier, p_alive, clv_12m
    from {{ source('analytics', 'customer_cltv') }}
),

summary as (
    select customer_code, total_net_sales, total_gross_margin
    from {{ ref('customer_summary') }}
),

based as (
    select
        summary.customer_code,
        coalesce(cltv.value_tier, 'none') as value_tier,
        cltv.p_alive,
        cltv.clv_12m,
        summary.total_gross_margin / nullif(summary.total_net_sales, 0) as gross_margin_rate,
        case
            when cltv.value_tier = 'high' and cltv.p_alive < 0.5 then 0.15
            when cltv.value_tier = 'high' then 0.05
            when cltv.value_tier = 'medium' and cltv.p_alive < 0.5 then 0.10
            when cltv.value_tier = 'medium' then 0.05
            else 0.0
        end as base_discount_pct
    from summary
    left join cltv
        on summary.customer_code = cltv.customer_code
),

capped as (
    select
        *,
        case
            when coalesce(gross_margin_rate, 0) <= 0 then 0.0
            else least(base_discount_pct, floor(gross_margin_rate * 100) / 100)
        end as suggested_discount_pct
    from based
)

select
    customer_code,
    value_tier,
    p_alive,
    clv_12m,
    gross_margin_rate,
    cast(base_discount_pct as double) as base_discount_pct,
    cast(suggested_discount_pct as double) as suggested_discount_pct,
    suggested_discount_pct < base_discount_pct as is_capped_by_margin,
    case
        when base_discount_pct = 0 then 'no discount'
        when suggested_discount_pct <= 0 then 'no margin'
        when p_alive < 0.5 then 'win back'
        else 'loyalty reward'
    end as discount_reason,
    {{ as_of_date() }} as as_of_date
from capped
