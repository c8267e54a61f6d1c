{#- dbt.safe_cast on DuckDB: dbt-duckdb has none, and dbt's default is a plain cast that fails on
    bad input. try_cast returns null instead, as Spark's cast does with ANSI mode off. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}
