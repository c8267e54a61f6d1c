with source as (
    select * from {{ source('raw', 'order_lines') }}
),

renamed as (
    select
        cast(order_id as string) as order_id,
        cast(line_number as integer) as line_number,
        cast(order_date as date) as order_date,
        cast(customer_code as string) as customer_code,
        cast(product_code as string) as product_code,
        cast(sold_quantity as bigint) as sold_quantity
    from source
)

select * from renamed
