{#- The priced lines with their product's category, not int_order_lines_enriched: that view
    also joins every line to its customer, which nothing here reads (a million-row hash join,
    1 s of CPU at a million customers). Inner join, as there: every line has its product
    (fact_sales' relationships tests).
    The lines are summed per customer and category_key (the product's (segment, category) as a
    small integer) and the names joined to the sums: hashing two text columns per line took 40%
    of the CPU of the model at a million customers (15-18 s to 10.5-12 s, the same rows). -#}
with categories as (
    select distinct
        category_key,
        segment,
        category
    from {{ ref('stg_raw__products') }}
),

by_key as (
    select
        sales.customer_code,
        products.category_key,
        count(*) as order_lines,
        sum(sales.sold_quantity) as sold_quantity,
        sum(sales.net_sales_amount) as net_sales,
        sum(sales.gross_margin_amount) as gross_margin
    from {{ ref('int_order_lines_priced') }} as sales
    inner join {{ ref('stg_raw__products') }} as products
        on sales.product_code = products.product_code
    where sales.date <= {{ as_of_date() }}
    group by sales.customer_code, products.category_key
),

by_category as (
    select
        by_key.customer_code,
        categories.category,
        categories.segment,
        by_key.order_lines,
        by_key.sold_quantity,
        by_key.net_sales,
        by_key.gross_margin
    from by_key
    inner join categories
        on by_key.category_key = categories.category_key
)

select
    customer_code,
    category,
    segment,
    order_lines,
    sold_quantity,
    net_sales,
    gross_margin,
    net_sales / nullif(sum(net_sales) over (partition by customer_code), 0) as share_of_net_sales,
    row_number() over (
        partition by customer_code order by net_sales desc, segment, category
    ) as category_rank
from by_category
