{#- For the log-normal spend model: over a customer's purchase days with positive spend, how many
    there are, the mean of their logs and the population variance of their logs
    (log_<name>_days, log_<name>_mean, log_<name>_var). Days with zero or negative spend have no
    log and are left out.

    The same refresh must give the same bits: a float sum depends on the order the engine's
    threads add it up in (DuckDB's parallel aggregates differ run to run in the last bit, and
    every CLTV figure inherits it). So each log is fixed to 18 decimals and every sum below is a
    sum of decimals, which is exact in any order; the variance is two-pass (the mean of squared
    deviations from the customer's mean), so equal amounts give exactly 0.

    Use in three steps, each a CTE over the purchase days (portable: ln, window avg, decimals):
      log_spend(amount)                        the day's log, as a column named log_<name>
      log_spend_deviation(name, partition_by)  its deviation from the customer's mean log
      log_spend_statistics(name)               the three aggregates, grouped by customer -#}
{% macro log_spend(amount) -%}
    case when {{ amount }} > 0 then cast(ln(cast({{ amount }} as double)) as decimal(38, 18)) end
{%- endmacro %}

{% macro log_spend_deviation(name, partition_by) -%}
    log_{{ name }} - avg(log_{{ name }}) over (partition by {{ partition_by }})
{%- endmacro %}

{% macro log_spend_statistics(name) -%}
    count(log_{{ name }}) as log_{{ name }}_days,
    avg(log_{{ name }}) as log_{{ name }}_mean,
    avg(
        cast({{ decimal_square('log_' ~ name ~ '_deviation') }} as decimal(38, 18))
    ) as log_{{ name }}_var
{%- endmacro %}
