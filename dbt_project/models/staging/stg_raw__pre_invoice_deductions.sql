with source as (
    select * from {{ source('raw', 'pre_invoice_deductions') }}
),

renamed as (
    select
        cast(customer_code as string) as customer_code,
        cast(fiscal_year as integer) as fiscal_year,
        cast(pre_invoice_discount_pct as decimal(9, 4)) as pre_invoice_discount_pct
    from source
)

select * from renamed
