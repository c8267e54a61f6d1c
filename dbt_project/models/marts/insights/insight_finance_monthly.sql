{#- AtliQ's P&L by month and market x platform x channel (region follows the market), with the
    same days of the previous year beside it. Amounts are decimal sums: exact and the same on
    every run.

    Like for like: an order line of the previous year counts for the month twelve months later
    only if it lies at or before the as-of date minus one year. So every full month is compared
    with the whole month a year earlier, and the as-of month (month to date) with the same days
    of that month a year earlier, never with its whole month. The previous year is joined with a
    full outer join: a month x market x platform x channel that sold a year earlier but not this
    year still gets a row (current amounts 0), so prior-year totals are never understated. -#}
{#- 12 months rather than 1 year: month arithmetic is the dateadd checked on Spark (fiscal_year) -#}
{%- set previous_cutoff = "cast(" ~ dbt.dateadd('month', -12, as_of_date()) ~ " as date)" -%}

with sales as (
    select
        fact.date,
        fact.market,
        fact.region,
        fact.platform,
        fact.channel,
        fact.sold_quantity,
        fact.gross_sales_amount,
        fact.pre_invoice_discount_amount,
        fact.net_sales_amount,
        fact.manufacturing_cost_amount,
        fact.gross_margin_amount
    from {{ ref('int_order_lines_enriched') }} as fact
),

monthly as (
    select
        cast({{ dbt.date_trunc('month', 'date') }} as date) as month_start_date,
        market,
        region,
        platform,
        channel,
        count(*) as order_lines,
        sum(sold_quantity) as sold_quantity,
        sum(gross_sales_amount) as gross_sales,
        sum(pre_invoice_discount_amount) as pre_invoice_discounts,
        sum(net_sales_amount) as net_sales,
        sum(manufacturing_cost_amount) as manufacturing_cost,
        sum(gross_margin_amount) as gross_margin
    from sales
    group by 1, market, region, platform, channel
),

-- the previous year's lines up to the same day, on the month they are compared with
previous as (
    select
        cast({{ dbt.date_trunc('month', dbt.dateadd('month', 12, 'date')) }} as date) as month_start_date,
        market,
        region,
        platform,
        channel,
        sum(net_sales_amount) as net_sales,
        sum(gross_margin_amount) as gross_margin
    from sales
    where date <= {{ previous_cutoff }}
    group by 1, market, region, platform, channel
),

combined as (
    select
        coalesce(monthly.month_start_date, previous.month_start_date) as month_start_date,
        coalesce(monthly.market, previous.market) as market,
        coalesce(monthly.region, previous.region) as region,
        coalesce(monthly.platform, previous.platform) as platform,
        coalesce(monthly.channel, previous.channel) as channel,
        coalesce(monthly.order_lines, 0) as order_lines,
        coalesce(monthly.sold_quantity, 0) as sold_quantity,
        coalesce(monthly.gross_sales, 0) as gross_sales,
        coalesce(monthly.pre_invoice_discounts, 0) as pre_invoice_discounts,
        coalesce(monthly.net_sales, 0) as net_sales,
        coalesce(monthly.manufacturing_cost, 0) as manufacturing_cost,
        coalesce(monthly.gross_margin, 0) as gross_margin,
        previous.net_sales as net_sales_previous_year,
        previous.gross_margin as gross_margin_previous_year
    from monthly
    full outer join previous
        on
            monthly.month_start_date = previous.month_start_date
            and monthly.market = previous.market
            and monthly.platform = previous.platform
            and monthly.channel = previous.channel
),

calendar as (
    select date, fiscal_year, fiscal_month_number
    from {{ ref('dim_date') }}
),

as_of_month as (
    select
        cast({{ dbt.date_trunc('month', as_of_date()) }} as date) as month_start_date,
        -- the as-of day's orders are in, so the month is complete on its last day
        {{ as_of_date() }} < cast(
            {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, dbt.date_trunc('month', as_of_date()))) }}
            as date
        ) as is_partial
)

select
    concat(
        cast(combined.month_start_date as string), '|', combined.market, '|', combined.platform, '|',
        combined.channel
    ) as finance_key,
    calendar.fiscal_year,
    calendar.fiscal_month_number,
    combined.month_start_date,
    combined.month_start_date = as_of_month.month_start_date and as_of_month.is_partial
        as is_month_to_date,
    combined.market,
    combined.region,
    combined.platform,
    combined.channel,
    combined.order_lines,
    combined.sold_quantity,
    combined.gross_sales,
    combined.pre_invoice_discounts,
    combined.net_sales,
    combined.manufacturing_cost,
    combined.gross_margin,
    combined.gross_margin / nullif(combined.net_sales, 0) as gross_margin_pct,
    combined.net_sales_previous_year,
    combined.gross_margin_previous_year,
    combined.net_sales - combined.net_sales_previous_year as net_sales_yoy_change,
    (combined.net_sales - combined.net_sales_previous_year)
    / nullif(combined.net_sales_previous_year, 0) as net_sales_yoy_pct,
    (combined.gross_margin - combined.gross_margin_previous_year)
    / nullif(combined.gross_margin_previous_year, 0) as gross_margin_yoy_pct,
    {{ as_of_date() }} as as_of_date
from combined
inner join calendar
    on combined.month_start_date = calendar.date
cross join as_of_month
