{#- The star schema's order-line fact: the priced order lines as they are (see
    int_order_lines_priced for how a line is priced). A view: a table would write a second copy
    of every order line (at 200,000 customers 1.5 s of CPU, half of what pricing them costs) for
    readers the priced table serves as well. On Spark a table: the pipeline reads and publishes
    Spark's marts from their Parquet folders, and a view has none. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view') }}

select
    order_line_id,
    order_id,
    line_number,
    date,
    fiscal_year,
    customer_code,
    product_code,
    sold_quantity,
    gross_price,
    pre_invoice_discount_pct,
    manufacturing_cost,
    gross_sales_amount,
    pre_invoice_discount_amount,
    net_sales_amount,
    manufacturing_cost_amount,
    gross_margin_amount
from {{ ref('int_order_lines_priced') }}
