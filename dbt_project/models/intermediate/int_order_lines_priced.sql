{#- Order-line grain, priced: AtliQ's net sales = gross x (1 - pre-invoice discount); gross margin
    = net sales - manufacturing cost. Prices, costs and discounts are those of the line's fiscal year.
    Amounts are decimal(18, 4), rounded per line: sums of decimals are exact, so every aggregate
    downstream is the same on every run (parallel sums of doubles differ in the last bits).
    Priced here, from staging, so that every model downstream (fact_sales, the enriched lines, the
    customer models) reads one priced copy of the order lines instead of pricing them again. -#}
with order_lines as (
    select
        order_id,
        line_number,
        order_date,
        {{ fiscal_year('order_date') }} as fiscal_year,
        customer_code,
        product_code,
        sold_quantity
    from {{ ref('stg_raw__order_lines') }}
),

priced as (
    select
        concat(order_lines.order_id, '-', cast(order_lines.line_number as string)) as order_line_id,
        order_lines.order_id,
        order_lines.line_number,
        order_lines.order_date as date,
        order_lines.fiscal_year,
        order_lines.customer_code,
        order_lines.product_code,
        order_lines.sold_quantity,
        prices.gross_price,
        discounts.pre_invoice_discount_pct,
        costs.manufacturing_cost
    from order_lines
    left join {{ ref('stg_raw__gross_prices') }} as prices
        on
            order_lines.product_code = prices.product_code
            and order_lines.fiscal_year = prices.fiscal_year
    left join {{ ref('stg_raw__pre_invoice_deductions') }} as discounts
        on
            order_lines.customer_code = discounts.customer_code
            and order_lines.fiscal_year = discounts.fiscal_year
    left join {{ ref('stg_raw__manufacturing_costs') }} as costs
        on
            order_lines.product_code = costs.product_code
            and order_lines.fiscal_year = costs.cost_year
),

amounts as (
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
        cast({{ money_quantity('sold_quantity') }} * gross_price as decimal(18, 4))
            as gross_sales_amount,
        {{ line_amount('sold_quantity', 'gross_price', 'pre_invoice_discount_pct') }}
            as pre_invoice_discount_amount,
        {{ line_amount('sold_quantity', 'gross_price', '(1 - pre_invoice_discount_pct)') }}
            as net_sales_amount,
        cast({{ money_quantity('sold_quantity') }} * manufacturing_cost as decimal(18, 4))
            as manufacturing_cost_amount
    from priced
)

select
    *,
    net_sales_amount - manufacturing_cost_amount as gross_margin_amount
from amounts
