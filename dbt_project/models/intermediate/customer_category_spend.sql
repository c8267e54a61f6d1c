{#- The priced lines with their product's category, not int_order_lines_enriched: that view
    also joins every line to its customer, which nothing here reads (a million-row hash join,
    1 s of CPU at a million customers). Inner join, as there: every line has its product
    (fact_sales' relationships tests). -#}
with lines as (
    select
        sales.customer_code,
        products.category,
        products.segment,
        sales.sold_quantity,
        sales.net_sales_amount,
        sales.gross_margin_amount
    from {{ ref('int_order_lines_priced') }} as sales
    inner join {{ ref('stg_raw__products') }} as products
        on sales.product_code = products.product_code
    where sales.date <= {{ as_of_date() }}
),

by_category as (
    select
        customer_code,
        category,
        segment,
        count(*) as order_lines,
        sum(sold_quantity) as sold_quantity,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin
    from lines
    group by customer_code, category, segment
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
