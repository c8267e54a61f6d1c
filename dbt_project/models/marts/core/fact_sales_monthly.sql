{#- AtliQ's own grain: the first of the month, product and customer, with the quantity sold. -#}
with monthly as (
    select
        cast({{ dbt.date_trunc('month', 'date') }} as date) as date,
        product_code,
        customer_code,
        sum(sold_quantity) as sold_quantity
    from {{ ref('fact_sales') }}
    group by
        cast({{ dbt.date_trunc('month', 'date') }} as date),
        product_code,
        customer_code
)

select
    date,
    product_code,
    customer_code,
    sold_quantity,
    {{ fiscal_year('date') }} as fiscal_year
from monthly
