{#- A suggested discount never exceeds the customer's gross margin rate (never sells below cost). -#}
select customer_code, suggested_discount_pct, gross_margin_rate
from {{ ref('customer_discount_offers') }}
where
    suggested_discount_pct > 0
    and (gross_margin_rate is null or suggested_discount_pct > gross_margin_rate)
