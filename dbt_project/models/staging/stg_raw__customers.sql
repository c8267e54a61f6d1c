with source as (
    select * from {{ source('raw', 'customers') }}
),

renamed as (
    select
        cast(customer_code as string) as customer_code,
        cast(customer as string) as customer,
        cast(platform as string) as platform,
        cast(channel as string) as channel,
        cast(market as string) as market,
        cast(sub_zone as string) as sub_zone,
        cast(region as string) as region,
        cast(city as string) as city,
        cast(email as string) as email,
        cast(occupation as string) as occupation,
        cast(date_of_birth as date) as date_of_birth
    from source
)

select * from renamed
