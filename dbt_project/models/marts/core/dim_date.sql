{#- A calendar from the first fiscal year with orders to the end of the as-of date's fiscal
    year. The data decides where it starts: when the model runs, the first order's fiscal year is
    read from the staged order lines, and the day count of a plain generated series (portable
    SQL) follows from it. Without orders (or while parsing) it covers the as-of fiscal year. -#}
{#- vars are none while dbt parses; any date will do then, the SQL is rendered again to run -#}
{%- set as_of = modules.datetime.date.fromisoformat(var('as_of_date') or '2000-01-01') -%}
{%- set as_of_fy = as_of.year + (1 if as_of.month >= 9 else 0) -%}
{%- set first_fy = namespace(value=as_of_fy) -%}
{%- if execute -%}
    {%- set order_lines = load_relation(ref('stg_raw__order_lines')) -%}
    {%- if order_lines is not none -%}
        {%- set found = run_query(
            "select min(" ~ fiscal_year('order_date') ~ ") from " ~ order_lines
        ).columns[0].values()[0] -%}
        {%- if found is not none and found | int < as_of_fy -%}
            {%- set first_fy.value = found | int -%}
        {%- endif -%}
    {%- endif -%}
{%- endif -%}
{%- set first_day = modules.datetime.date(first_fy.value - 1, 9, 1) -%}
{%- set fy_end = modules.datetime.date(as_of_fy, 8, 31) -%}
{%- set n_days = (fy_end - first_day).days + 1 -%}

with day_numbers as (
    {{ dbt.generate_series(n_days) }}
),

calendar as (
    select
        cast({{ dbt.dateadd('day', 'generated_number - 1', "cast('" ~ first_day.isoformat() ~ "' as date)") }} as date) as date
    from day_numbers
),

first_fiscal_year as (
    select min({{ fiscal_year('order_date') }}) as fiscal_year
    from {{ ref('stg_raw__order_lines') }}
),

fiscal as (
    select
        calendar.date,
        {{ fiscal_year('calendar.date') }} as fiscal_year,
        {{ fiscal_month_number('calendar.date') }} as fiscal_month_number
    from calendar
),

final as (
    select
        fiscal.date,
        cast(extract(year from fiscal.date) as integer) as calendar_year,
        cast(extract(month from fiscal.date) as integer) as calendar_month,
        cast({{ dbt.date_trunc('month', 'fiscal.date') }} as date) as month_start_date,
        fiscal.fiscal_year,
        fiscal.fiscal_month_number,
        cast(floor((fiscal.fiscal_month_number - 1) / 3) + 1 as integer) as fiscal_quarter,
        concat('FY', cast(fiscal.fiscal_year as string)) as fiscal_year_label,
        concat(
            'Q', cast(cast(floor((fiscal.fiscal_month_number - 1) / 3) + 1 as integer) as string)
        ) as fiscal_quarter_label,
        fiscal.date <= {{ as_of_date() }} as is_on_or_before_as_of
    from fiscal
    cross join first_fiscal_year
    -- an order after the as-of date is not in the calendar's range and not a reason to start it
    where fiscal.fiscal_year >= least(
        coalesce(first_fiscal_year.fiscal_year, {{ fiscal_year(as_of_date()) }}), {{ fiscal_year(as_of_date()) }}
    )
)

select * from final
