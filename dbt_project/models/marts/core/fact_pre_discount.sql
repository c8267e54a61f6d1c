select
    customer_code,
    fiscal_year,
    pre_invoice_discount_pct
from {{ ref('stg_raw__pre_invoice_deductions') }}
