{#- Category trends: each product category's fiscal-year sales with the previous fiscal year
    beside it. A year still in progress at the as-of date is compared with the same fiscal months
    of the year before (year to date), so trends are never distorted by a partial year.
    trend: 'new' (no sales the year before), 'growing' (net sales up more than 10%), 'declining'
    (down more than 10%), 'stable' otherwise. -#}
with as_of_month as (
    select fiscal_year, fiscal_month_number
    from {{ ref('dim_date') }}
    where date = {{ as_of_date() }}
),

categories as (
    select distinct
        category_key,
        segment,
        category
    from {{ ref('stg_raw__products') }}
),

-- the priced lines with their product, not int_order_lines_enriched: nothing here reads the
-- customer that view joins to every line (see customer_category_spend); grouped by the
-- product's category_key, the names joined to the sums (a third less CPU than by the names)
sales as (
    select
        fact.fiscal_year,
        calendar.fiscal_month_number,
        products.category_key,
        fact.customer_code,
        fact.sold_quantity,
        fact.net_sales_amount,
        fact.gross_margin_amount
    from {{ ref('int_order_lines_priced') }} as fact
    inner join {{ ref('stg_raw__products') }} as products
        on fact.product_code = products.product_code
    inner join {{ ref('dim_date') }} as calendar
        on fact.date = calendar.date
),

yearly_by_key as (
    select
        sales.fiscal_year,
        sales.category_key,
        count(distinct sales.customer_code) as customers,
        sum(sales.sold_quantity) as sold_quantity,
        sum(sales.net_sales_amount) as net_sales,
        sum(sales.gross_margin_amount) as gross_margin,
        -- the same fiscal months as the as-of date's year to date, to compare a year in progress
        sum(case
            when sales.fiscal_month_number <= as_of_month.fiscal_month_number
                then sales.net_sales_amount
            else 0
        end) as net_sales_same_months
    from sales
    cross join as_of_month
    group by sales.fiscal_year, sales.category_key
),

yearly as (
    select
        yearly_by_key.fiscal_year,
        categories.category,
        categories.segment,
        yearly_by_key.customers,
        yearly_by_key.sold_quantity,
        yearly_by_key.net_sales,
        yearly_by_key.gross_margin,
        yearly_by_key.net_sales_same_months
    from yearly_by_key
    inner join categories
        on yearly_by_key.category_key = categories.category_key
),

compared as (
    select
        yearly.fiscal_year,
        yearly.category,
        yearly.segment,
        yearly.fiscal_year = as_of_month.fiscal_year as is_year_to_date,
        yearly.customers,
        yearly.sold_quantity,
        yearly.net_sales,
        yearly.gross_margin,
        case
            when yearly.fiscal_year = as_of_month.fiscal_year then previous.net_sales_same_months
            else previous.net_sales
        end as net_sales_previous_year
    from yearly
    cross join as_of_month
    left join yearly as previous
        on
            yearly.category = previous.category
            and yearly.segment = previous.segment
            and yearly.fiscal_year = previous.fiscal_year + 1
)

select
    concat(cast(fiscal_year as string), '|', segment, '|', category) as category_year_key,
    fiscal_year,
    category,
    segment,
    is_year_to_date,
    customers,
    sold_quantity,
    net_sales,
    gross_margin,
    gross_margin / nullif(net_sales, 0) as gross_margin_pct,
    net_sales_previous_year,
    (net_sales - net_sales_previous_year) / nullif(net_sales_previous_year, 0) as net_sales_yoy_pct,
    case
        when coalesce(net_sales_previous_year, 0) = 0 then 'new'
        when (net_sales - net_sales_previous_year) / net_sales_previous_year > 0.10 then 'growing'
        when (net_sales - net_sales_previous_year) / net_sales_previous_year < -0.10 then 'declining'
        else 'stable'
    end as trend,
    {{ as_of_date() }} as as_of_date
from compared
