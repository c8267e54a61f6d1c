{#- On Spark, the raw.* sources must exist in the metastore before the models read them. With
    --vars '{spark_raw_parquet_dir: /path}', this on-run-start hook (re-)registers every raw source
    table as an external parquet table over <dir>/<table>/ (e.g. written by DuckDB's COPY ... TO),
    inside the dbt process that runs the build: no second Spark start-up. A no-op on DuckDB, whose
    raw tables are written by the Dagster raw assets, and when the var is not set. -#}
{% macro register_raw_parquet_tables() -%}
    {{ return(adapter.dispatch('register_raw_parquet_tables', 'customer_analytics')()) }}
{%- endmacro %}

{% macro default__register_raw_parquet_tables() -%}
{%- endmacro %}

{% macro spark__register_raw_parquet_tables() -%}
    {%- set parquet_dir = var('spark_raw_parquet_dir', none) -%}
    {%- if execute and parquet_dir -%}
        {%- set sources = graph.sources.values() | selectattr('source_name', 'equalto', 'raw') | list -%}
        {%- do run_query('create database if not exists ' ~ sources[0].schema) -%}
        {%- for source in sources -%}
            {%- set table = source.schema ~ '.' ~ source.name -%}
            {%- do run_query('drop table if exists ' ~ table) -%}
            {%- do run_query("create table " ~ table ~ " using parquet location '"
                             ~ parquet_dir ~ "/" ~ source.name ~ "'") -%}
            {%- do log('registered ' ~ table ~ ' from ' ~ parquet_dir ~ '/' ~ source.name, info=true) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
