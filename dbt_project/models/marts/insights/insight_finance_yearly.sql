{#- The fiscal-year P&L by market x platform x channel, with year-over-year change, like for like:
    the monthly rows already compare each month with the same days a year earlier (the as-of
    month only up to the as-of day), so a fiscal year in progress (is_year_to_date) is compared
    from 1 September to the as-of day with the same span a year earlier. A fiscal year is closed
    once the as-of date reaches its last day, 31 August (the as-of day's orders are in). -#}
with monthly as (
    select * from {{ ref('insight_finance_monthly') }}
),

as_of_year as (
    select
        fiscal_year,
        -- the last day of the as-of date's fiscal year is 31 August
        {{ as_of_date() }} < cast(
            {{ dbt.dateadd('day', -1, "cast(concat(cast(fiscal_year as string), '-09-01') as date)") }}
            as date
        ) as is_open
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
    yearly.fiscal_year = as_of_year.fiscal_year and as_of_year.is_open as is_year_to_date,
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
    yearly.gross_margin_previous_year,
    yearly.net_sales - yearly.net_sales_previous_year as net_sales_yoy_change,
    (yearly.net_sales - yearly.net_sales_previous_year) / nullif(yearly.net_sales_previous_year, 0)
        as net_sales_yoy_pct,
    (yearly.gross_margin - yearly.gross_margin_previous_year)
    / nullif(yearly.gross_margin_previous_year, 0) as gross_margin_yoy_pct,
    {{ as_of_date() }} as as_of_date
from yearly
cross join as_of_year
