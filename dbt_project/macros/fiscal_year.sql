{#- AtliQ's fiscal year starts on 1 September: FY2021 runs Sep 2020 to Aug 2021. -#}
{% macro fiscal_year(date_expr) -%}
    cast(extract(year from {{ dbt.dateadd('month', 4, date_expr) }}) as integer)
{%- endmacro %}

{#- Months since the fiscal year began, 1 = September. -#}
{% macro fiscal_month_number(date_expr) -%}
    cast(extract(month from {{ dbt.dateadd('month', 4, date_expr) }}) as integer)
{%- endmacro %}
