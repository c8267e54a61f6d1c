select
    product_code,
    cost_year,
    manufacturing_cost
from {{ ref('stg_raw__manufacturing_costs') }}
