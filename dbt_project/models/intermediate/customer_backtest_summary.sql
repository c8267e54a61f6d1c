{#- The CLTV backtest's input: the lifetimes summary of a calibration period that ends
    holdout_days before the as-of date, and what each customer actually did in the holdout
    period after it, exactly as lifetimes.utils.calibration_and_holdout_data computes them with
    freq='D' (purchase days, not orders; the first purchase day is not a repeat).
    Calibration: purchase days <= the cutoff. Holdout: purchase days in (cutoff, as-of]. -#}
{%- set holdout_days = var('holdout_days') | int -%}
{#- while parsing, vars are not set (dbt gives none) -#}
{%- if execute and holdout_days < 1 -%}
    {{ exceptions.raise_compiler_error("var('holdout_days') must be a whole number of days >= 1, got " ~ var('holdout_days')) }}
{%- endif -%}
{%- set cutoff = "cast(" ~ dbt.dateadd('day', -holdout_days, as_of_date()) ~ " as date)" -%}
{#- the start of the "repeat the last period" baseline's window: holdout_days before the cutoff -#}
{%- set last_period_start = "cast(" ~ dbt.dateadd('day', -2 * holdout_days, as_of_date()) ~ " as date)" -%}

with purchase_days as (
    select customer_code, date, net_sales, gross_margin
    from {{ ref('int_purchase_days_aggregated') }}
),

calibration_day_logs as (
    select
        customer_code,
        date,
        net_sales,
        gross_margin,
        {{ log_spend('net_sales') }} as log_net_sales,
        {{ log_spend('gross_margin') }} as log_gross_margin
    from purchase_days
    where date <= {{ cutoff }}
),

calibration_days as (
    select
        *,
        {{ log_spend_deviation('net_sales', 'customer_code') }} as log_net_sales_deviation,
        {{ log_spend_deviation('gross_margin', 'customer_code') }} as log_gross_margin_deviation
    from calibration_day_logs
),

calibration as (
    select
        customer_code,
        min(date) as first_order_date,
        max(date) as last_order_date_cal,
        count(*) as purchase_day_count_cal,
        sum(net_sales) as total_net_sales_cal,
        sum(gross_margin) as total_gross_margin_cal,
        {{ log_spend_statistics('net_sales') }},
        {{ log_spend_statistics('gross_margin') }}
    from calibration_days
    group by customer_code
),

calibration_repeat_days as (
    select
        calibration_days.customer_code,
        avg(calibration_days.net_sales) as monetary_value_net_sales_cal,
        avg(calibration_days.gross_margin) as monetary_value_gross_margin_cal,
        -- repeat purchase days in the last holdout-length window of the calibration period
        count(case when calibration_days.date > {{ last_period_start }} then 1 end)
            as frequency_last_period_cal
    from calibration_days
    inner join calibration
        on calibration_days.customer_code = calibration.customer_code
    where calibration_days.date > calibration.first_order_date
    group by calibration_days.customer_code
),

holdout as (
    select
        customer_code,
        count(*) as frequency_holdout,
        sum(net_sales) as net_sales_holdout,
        sum(gross_margin) as gross_margin_holdout
    from purchase_days
    where date > {{ cutoff }}
    group by customer_code
),

final as (
    select
        calibration.customer_code,
        calibration.first_order_date,
        calibration.last_order_date_cal,
        calibration.purchase_day_count_cal - 1 as frequency_cal,
        {{ dbt.datediff('calibration.first_order_date', 'calibration.last_order_date_cal', 'day') }} as recency_cal,
        {{ dbt.datediff('calibration.first_order_date', cutoff, 'day') }} as t_cal,
        coalesce(calibration_repeat_days.monetary_value_net_sales_cal, 0) as monetary_value_net_sales_cal,
        coalesce(calibration_repeat_days.monetary_value_gross_margin_cal, 0) as monetary_value_gross_margin_cal,
        coalesce(calibration_repeat_days.frequency_last_period_cal, 0) as frequency_last_period_cal,
        calibration.total_net_sales_cal,
        calibration.total_gross_margin_cal,
        calibration.log_net_sales_days as log_net_sales_days_cal,
        calibration.log_net_sales_mean as log_net_sales_mean_cal,
        calibration.log_net_sales_var as log_net_sales_var_cal,
        calibration.log_gross_margin_days as log_gross_margin_days_cal,
        calibration.log_gross_margin_mean as log_gross_margin_mean_cal,
        calibration.log_gross_margin_var as log_gross_margin_var_cal,
        coalesce(holdout.frequency_holdout, 0) as frequency_holdout,
        coalesce(holdout.net_sales_holdout, 0) as net_sales_holdout,
        coalesce(holdout.gross_margin_holdout, 0) as gross_margin_holdout,
        {{ dbt.datediff(cutoff, as_of_date(), 'day') }} as duration_holdout,
        {{ cutoff }} as calibration_end_date,
        {{ as_of_date() }} as as_of_date
    from calibration
    left join calibration_repeat_days
        on calibration.customer_code = calibration_repeat_days.customer_code
    left join holdout
        on calibration.customer_code = holdout.customer_code
)

select * from final
