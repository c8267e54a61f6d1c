{#- The fiscal-year P&L by market x platform x channel, with year-over-year change. A fiscal
    year still in progress at the as-of date is compared with the same months of the year before
    (is_year_to_date), so growth is never understated by a partial year. -#}
with monthly as (
    select * from {{ ref('insight_finance_monthly') }}
),

as_of_month as (
    select fiscal_year, fiscal_month_number
    from {{ ref('dim_date') }}
    where date = {{ as_of_date() }}
),

yearly as (
    select
        monthly.fiscal_year,
        monthly.market,
        monthly.region,
        monthly.platform,
        monthly.channel,
        sum(monthly.gross_sales) as gross_sales,
        sum(monthly.pre_invoice_discounts) as pre_invoice_discounts,
        sum(monthly.net_sales) as net_sales,
        sum(monthly.manufacturing_cost) as manufacturing_cost,
        sum(monthly.gross_margin) as gross_margin,
        -- the previous year over the same fiscal months (all of them for a closed year)
        sum(monthly.net_sales_previous_year) as net_sales_previous_year,
        sum(monthly.gross_margin_previous_year) as gross_margin_previous_year
    from monthly
    group by monthly.fiscal_year, monthly.market, monthly.region, monthly.platform, monthly.channel
)

select
    concat(
        cast(yearly.fiscal_year as string), '|', yearly.market, '|', yearly.platform, '|', yearly.channel
    ) as finance_key,
    yearly.fiscal_year,
    yearly.fiscal_year = as_of_month.fiscal_year and as_of_month.fiscal_month_number < 12
        as is_year_to_date,
    yearly.market,
    yearly.region,
    yearly.platform,
    yearly.channel,
    yearly.gross_sales,
    yearly.pre_invoice_discounts,
    yearly.net_sales,
    yearly.manufacturing_cost,
    yearly.gross_margin,
    yearly.gross_margin / nullif(yearly.net_sales, 0) as gross_margin_pct,
    yearly.net_sales_previous_year,
    yearly.net_sales - yearly.net_sales_previous_year as net_sales_yoy_change,
    (yearly.net_sales - yearly.net_sales_previous_year) / nullif(yearly.net_sales_previous_year, 0)
        as net_sales_yoy_pct,
    (yearly.gross_margin - yearly.gross_margin_previous_year)
        / nullif(yearly.gross_margin_previous_year, 0) as gross_margin_yoy_pct,
    {{ as_of_date() }} as as_of_date
from yearly
cross join as_of_month
