with source as (
    select * from {{ source('raw', 'gross_prices') }}
),

renamed as (
    select
        cast(product_code as string) as product_code,
        cast(fiscal_year as integer) as fiscal_year,
        cast(gross_price as decimal(18, 4)) as gross_price
    from source
)

select * from renamed
