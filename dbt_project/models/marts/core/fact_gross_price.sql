select
    product_code,
    fiscal_year,
    gross_price
from {{ ref('stg_raw__gross_prices') }}
