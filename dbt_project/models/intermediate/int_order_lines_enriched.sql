{#- The order lines of fact_sales with the attributes of their customer and product that the
    insight marts group by: the one place fact_sales meets dim_customer and dim_product. A view,
    so each insight mart still scans the order lines once, inside its own query. Inner joins:
    every line has its customer and product (fact_sales' relationships tests). -#}
{{ config(materialized='view') }}

select
    fact.order_line_id,
    fact.order_id,
    fact.line_number,
    fact.date,
    fact.fiscal_year,
    fact.customer_code,
    fact.product_code,
    fact.sold_quantity,
    fact.gross_sales_amount,
    fact.pre_invoice_discount_amount,
    fact.net_sales_amount,
    fact.manufacturing_cost_amount,
    fact.gross_margin_amount,
    customers.market,
    customers.region,
    customers.platform,
    customers.channel,
    products.segment,
    products.category
from {{ ref('fact_sales') }} as fact
inner join {{ ref('dim_customer') }} as customers
    on fact.customer_code = customers.customer_code
inner join {{ ref('dim_product') }} as products
    on fact.product_code = products.product_code
