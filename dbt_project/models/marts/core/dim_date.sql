{#- A calendar from the first fiscal year with orders to the end of the as-of date's fiscal
    year. The day count is fixed at compile time (from a floor date far in the past) so the
    series is plain portable SQL; the data decides where the calendar starts. -#}
{%- set floor_date = '2000-09-01' -%}
{%- set as_of = modules.datetime.date.fromisoformat(var('as_of_date')) -%}
{%- set fy_end = modules.datetime.date(as_of.year + (1 if as_of.month >= 9 else 0), 8, 31) -%}
{%- set n_days = (fy_end - modules.datetime.date.fromisoformat(floor_date)).days + 1 -%}

with day_numbers as (
    {{ dbt.generate_series(n_days) }}
),

calendar as (
    select
        cast({{ dbt.dateadd('day', 'generated_number - 1', "cast('" ~ floor_date ~ "' as date)") }} as date) as date
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
    where fiscal.fiscal_year >= coalesce(first_fiscal_year.fiscal_year, {{ fiscal_year(as_of_date()) }})
)

select * from final
