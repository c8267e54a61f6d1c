select
    product_code,
    division,
    segment,
    category,
    product,
    variant
from {{ ref('stg_raw__products') }}
