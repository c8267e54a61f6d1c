{#- 'jane.doe@example.com' -> 'j***@example.com': enough to recognise a domain, not a person. -#}
{% macro mask_email(column) -%}
    case
        when {{ column }} is null then null
        else concat(substring({{ column }}, 1, 1), '***@', {{ dbt.split_part(column, "'@'", 2) }})
    end
{%- endmacro %}
