{#- The refresh's as-of date as a date literal; every "as of" computation reads it, never now(). -#}
{% macro as_of_date() -%}
    cast('{{ var("as_of_date") }}' as date)
{%- endmacro %}
