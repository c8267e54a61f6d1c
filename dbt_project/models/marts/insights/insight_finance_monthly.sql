{#- AtliQ's P&L by month and market x platform x channel (region follows the market), with the
    same month of the previous fiscal year beside it. Amounts are decimal sums: exact and the
    same on every run. -#}
with sales as (
    select
        cast({{ dbt.date_trunc('month', 'fact.date') }} as date) as month_start_date,
        customers.market,
        customers.region,
        customers.platform,
        customers.channel,
        fact.sold_quantity,
        fact.gross_sales_amount,
        fact.pre_invoice_discount_amount,
        fact.net_sales_amount,
        fact.manufacturing_cost_amount,
        fact.gross_margin_amount
    from {{ ref('fact_sales') }} as fact
    inner join {{ ref('dim_customer') }} as customers
        on fact.customer_code = customers.customer_code
),

monthly as (
    select
        month_start_date,
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
    group by month_start_date, market, region, platform, channel
),

calendar as (
    select date, fiscal_year, fiscal_month_number
    from {{ ref('dim_date') }}
)

select
    concat(
        cast(monthly.month_start_date as string), '|', monthly.market, '|', monthly.platform, '|',
        monthly.channel
    ) as finance_key,
    calendar.fiscal_year,
    calendar.fiscal_month_number,
    monthly.month_start_date,
    monthly.market,
    monthly.region,
    monthly.platform,
    monthly.channel,
    monthly.order_lines,
    monthly.sold_quantity,
    monthly.gross_sales,
    monthly.pre_invoice_discounts,
    monthly.net_sales,
    monthly.manufacturing_cost,
    monthly.gross_margin,
    monthly.gross_margin / nullif(monthly.net_sales, 0) as gross_margin_pct,
    previous.net_sales as net_sales_previous_year,
    previous.gross_margin as gross_margin_previous_year,
    monthly.net_sales - previous.net_sales as net_sales_yoy_change,
    (monthly.net_sales - previous.net_sales) / nullif(previous.net_sales, 0) as net_sales_yoy_pct,
    (monthly.gross_margin - previous.gross_margin) / nullif(previous.gross_margin, 0)
        as gross_margin_yoy_pct,
    {{ as_of_date() }} as as_of_date
from monthly
inner join calendar
    on monthly.month_start_date = calendar.date
left join monthly as previous
    on previous.month_start_date = cast({{ dbt.dateadd('month', -12, 'monthly.month_start_date') }} as date)
    and monthly.market = previous.market
    and monthly.platform = previous.platform
    and monthly.channel = previous.channel
