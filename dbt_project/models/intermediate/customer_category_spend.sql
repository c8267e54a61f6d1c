with lines as (
    select
        sales.customer_code,
        sales.category,
        sales.segment,
        sales.sold_quantity,
        sales.net_sales_amount,
        sales.gross_margin_amount
    from {{ ref('int_order_lines_enriched') }} as sales
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
