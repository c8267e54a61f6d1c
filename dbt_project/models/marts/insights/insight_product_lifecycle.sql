{#- New vs declining products: each product's net sales in the 12 months up to the as-of date
    against the 12 months before. lifecycle_status, first match:
    'new' (first sale within the last 12 months), 'inactive' (no sale in the last 12 months),
    'growing' (up more than 10%), 'declining' (down more than 10%), 'stable'. Products never
    sold are 'unsold'. -#}
with sales as (
    select
        product_code,
        date,
        sold_quantity,
        net_sales_amount,
        gross_margin_amount,
        date > cast({{ dbt.dateadd('month', -12, as_of_date()) }} as date) as is_last_12m,
        date > cast({{ dbt.dateadd('month', -24, as_of_date()) }} as date) as is_last_24m
    from {{ ref('fact_sales') }}
),

by_product as (
    select
        product_code,
        min(date) as first_sale_date,
        max(date) as last_sale_date,
        sum(case when is_last_12m then sold_quantity else 0 end) as sold_quantity_last_12m,
        sum(case when is_last_12m then net_sales_amount else 0 end) as net_sales_last_12m,
        sum(case when is_last_24m and not is_last_12m then net_sales_amount else 0 end)
            as net_sales_prior_12m,
        sum(case when is_last_12m then gross_margin_amount else 0 end) as gross_margin_last_12m
    from sales
    group by product_code
),

classified as (
    select
        products.product_code,
        products.product,
        products.variant,
        products.category,
        products.segment,
        by_product.first_sale_date,
        by_product.last_sale_date,
        coalesce(by_product.sold_quantity_last_12m, 0) as sold_quantity_last_12m,
        coalesce(by_product.net_sales_last_12m, 0) as net_sales_last_12m,
        coalesce(by_product.net_sales_prior_12m, 0) as net_sales_prior_12m,
        coalesce(by_product.gross_margin_last_12m, 0) as gross_margin_last_12m
    from {{ ref('dim_product') }} as products
    left join by_product
        on products.product_code = by_product.product_code
)

select
    product_code,
    product,
    variant,
    category,
    segment,
    first_sale_date,
    last_sale_date,
    sold_quantity_last_12m,
    net_sales_last_12m,
    net_sales_prior_12m,
    gross_margin_last_12m,
    (net_sales_last_12m - net_sales_prior_12m) / nullif(net_sales_prior_12m, 0) as net_sales_growth_pct,
    case
        when first_sale_date is null then 'unsold'
        when first_sale_date > cast({{ dbt.dateadd('month', -12, as_of_date()) }} as date) then 'new'
        when net_sales_last_12m = 0 then 'inactive'
        when net_sales_prior_12m = 0 then 'growing'
        when (net_sales_last_12m - net_sales_prior_12m) / net_sales_prior_12m > 0.10 then 'growing'
        when (net_sales_last_12m - net_sales_prior_12m) / net_sales_prior_12m < -0.10 then 'declining'
        else 'stable'
    end as lifecycle_status,
    {{ as_of_date() }} as as_of_date
from classified
