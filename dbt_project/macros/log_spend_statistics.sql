{#- For the log-normal spend model: over a customer's purchase days with positive `amount`, how
    many there are, the mean of their logs and the population variance of their logs
    (log_<name>_days, log_<name>_mean, log_<name>_var). Days with zero or negative spend have no
    log and are left out. Portable: ln and var_pop exist on DuckDB and Spark. -#}
{% macro log_spend_statistics(amount, name) -%}
    count(case when {{ amount }} > 0 then 1 end) as log_{{ name }}_days,
    avg(case when {{ amount }} > 0 then ln(cast({{ amount }} as double)) end) as log_{{ name }}_mean,
    var_pop(case when {{ amount }} > 0 then ln(cast({{ amount }} as double)) end) as log_{{ name }}_var
{%- endmacro %}
