{#- Bestsellers per fiscal year and market: every product sold there, ranked by quantity and by
    gross margin (ties by product code). Keep rank <= 10 in BI for a top-10. -#}
with sales as (
    select
        fact.fiscal_year,
        fact.market,
        fact.region,
        fact.product_code,
        fact.sold_quantity,
        fact.net_sales_amount,
        fact.gross_margin_amount
    from {{ ref('int_order_lines_enriched') }} as fact
),

by_product as (
    select
        fiscal_year,
        market,
        region,
        product_code,
        sum(sold_quantity) as sold_quantity,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin
    from sales
    group by fiscal_year, market, region, product_code
)

select
    concat(cast(by_product.fiscal_year as string), '|', by_product.market, '|', by_product.product_code)
        as bestseller_key,
    by_product.fiscal_year,
    by_product.market,
    by_product.region,
    by_product.product_code,
    products.product,
    products.variant,
    products.category,
    products.segment,
    products.division,
    by_product.sold_quantity,
    by_product.net_sales,
    by_product.gross_margin,
    by_product.gross_margin / nullif(by_product.net_sales, 0) as gross_margin_pct,
    row_number() over (
        partition by by_product.fiscal_year, by_product.market
        order by by_product.sold_quantity desc, by_product.product_code
    ) as rank_by_quantity,
    row_number() over (
        partition by by_product.fiscal_year, by_product.market
        order by by_product.gross_margin desc, by_product.product_code
    ) as rank_by_margin,
    {{ as_of_date() }} as as_of_date
from by_product
inner join {{ ref('dim_product') }} as products
    on by_product.product_code = products.product_code
