with customers as (
    select * from {{ ref('stg_raw__customers') }}
),

first_orders as (
    select
        customer_code,
        min(order_date) as first_order_date
    from {{ ref('stg_raw__order_lines') }}
    group by customer_code
),

joined as (
    select
        customers.customer_code,
        customers.customer,
        customers.platform,
        customers.channel,
        customers.market,
        customers.sub_zone,
        customers.region,
        customers.city,
        customers.email,
        customers.occupation,
        customers.date_of_birth,
        first_orders.first_order_date
    from customers
    left join first_orders
        on customers.customer_code = first_orders.customer_code
)

select * from joined
