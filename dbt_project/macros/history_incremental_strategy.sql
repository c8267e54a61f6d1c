{#- Per-refresh history tables replace one as-of date's rows and keep the rest. DuckDB does it
    with delete+insert on the unique key; Spark (parquet, no merge) overwrites the partition. -#}
{% macro history_incremental_strategy() -%}
    {{ return(adapter.dispatch('history_incremental_strategy', 'customer_analytics')()) }}
{%- endmacro %}

{% macro default__history_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{% macro spark__history_incremental_strategy() -%}
    {{ return('insert_overwrite') }}
{%- endmacro %}
