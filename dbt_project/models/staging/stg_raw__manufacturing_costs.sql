with source as (
    select * from {{ source('raw', 'manufacturing_costs') }}
),

renamed as (
    select
        cast(product_code as string) as product_code,
        cast(cost_year as integer) as cost_year,
        cast(manufacturing_cost as decimal(18, 4)) as manufacturing_cost
    from source
)

select * from renamed
