with source as (
    select * from {{ source('raw', 'products') }}
),

renamed as (
    select
        cast(product_code as string) as product_code,
        cast(division as string) as division,
        cast(segment as string) as segment,
        cast(category as string) as category,
        cast(product as string) as product,
        cast(variant as string) as variant
    from source
)

select * from renamed
