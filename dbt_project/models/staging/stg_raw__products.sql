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
),

keyed as (
    select
        *,
        -- dense_rank: the same key for the same pair, nulls included (peers in the ordering);
        -- why the models want it: the column's description in _staging__models.yml
        dense_rank() over (order by segment, category) as category_key
    from renamed
)

select * from keyed
