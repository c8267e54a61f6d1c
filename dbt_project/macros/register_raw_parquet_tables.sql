{#- On Spark, the sources (raw.*, truth.*, analytics.*: tables Python writes) must exist in the
    metastore before the models read them. This on-run-start hook (re-)registers them as external
    parquet tables, inside the dbt process that runs the build: no second Spark start-up.
    - --vars '{spark_tables_dir: /path}' (what the pipeline passes with PIPELINE_ENGINE=spark):
      every source the selected nodes read, from <dir>/<source schema>/<table>/. Only those:
      the customer marts' analytics.* sources do not exist yet when the star schema builds.
    - --vars '{spark_raw_parquet_dir: /path}': every raw source from <dir>/<table>/.
    A no-op on DuckDB, whose sources are tables in the warehouse file, and without either var. -#}
{% macro register_raw_parquet_tables() -%}
    {{ return(adapter.dispatch('register_raw_parquet_tables', 'customer_analytics')()) }}
{%- endmacro %}

{% macro default__register_raw_parquet_tables() -%}
{%- endmacro %}

{% macro spark__register_raw_parquet_tables() -%}
    {%- if execute -%}
        {%- set tables_dir = var('spark_tables_dir', none) -%}
        {%- set raw_dir = var('spark_raw_parquet_dir', none) -%}
        {%- set registered = [] -%}
        {%- if tables_dir -%}
            {%- set wanted = [] -%}
            {%- for unique_id in selected_resources -%}
                {%- set node = graph.nodes.get(unique_id) -%}
                {%- for parent in (node.depends_on.nodes if node else []) -%}
                    {%- if parent.startswith('source.') and parent not in wanted -%}
                        {%- do wanted.append(parent) -%}
                    {%- endif -%}
                {%- endfor -%}
            {%- endfor -%}
            {%- for unique_id in wanted | sort -%}
                {%- set source = graph.sources[unique_id] -%}
                {%- do registered.append((source, tables_dir ~ '/' ~ source.schema ~ '/' ~ source.name)) -%}
            {%- endfor -%}
        {%- elif raw_dir -%}
            {%- for source in graph.sources.values() | selectattr('source_name', 'equalto', 'raw') -%}
                {%- do registered.append((source, raw_dir ~ '/' ~ source.name)) -%}
            {%- endfor -%}
        {%- endif -%}
        {%- for source, location in registered -%}
            {%- set table = source.schema ~ '.' ~ source.name -%}
            {%- do run_query('create database if not exists ' ~ source.schema) -%}
            {%- do run_query('drop table if exists ' ~ table) -%}
            {%- do run_query("create table " ~ table ~ " using parquet location '" ~ location ~ "'") -%}
            {%- do log('registered ' ~ table ~ ' from ' ~ location, info=true) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
