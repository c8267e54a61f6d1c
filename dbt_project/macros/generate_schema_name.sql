{#- Land models in the schema they name (`staging`, `marts`) instead of dbt's default
    `<target schema>_<custom>`: BI users query `marts.dim_customer`, not `main_marts.dim_customer`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
