{#- Decimal arithmetic that rounds once on both engines. Spark bounds a product's decimal type at
    38 digits by cutting its scale to as little as 6 places (allowPrecisionLoss, which must stay
    on: without it quotients overflow to NULL), so a value rounded again later is rounded twice:
    a line's net sales 293.34584956 became 293.345850, then 293.3459 instead of DuckDB's 293.3458.
    These macros give Spark operand types whose exact product fits 38 digits. DuckDB's SQL is
    unchanged. -#}

{#- A quantity multiplied by decimal(18, 4) prices and a decimal(9, 4) rate: as decimal(8, 0) on
    Spark, the product of the three is decimal(38, 8), exact (quantities below 100 million). -#}
{% macro money_quantity(column) -%}
    {{ return(adapter.dispatch('money_quantity', 'customer_analytics')(column)) }}
{%- endmacro %}

{% macro default__money_quantity(column) -%}
    {{ column }}
{%- endmacro %}

{% macro spark__money_quantity(column) -%}
    cast({{ column }} as decimal(8, 0))
{%- endmacro %}

{#- The square of a small decimal (a log-spend deviation, |x| < 100): as decimal(20, 18) on Spark
    the square keeps 33 places before the caller rounds it to 18. -#}
{% macro decimal_square(expression) -%}
    {{ return(adapter.dispatch('decimal_square', 'customer_analytics')(expression)) }}
{%- endmacro %}

{% macro default__decimal_square(expression) -%}
    {{ expression }} * {{ expression }}
{%- endmacro %}

{% macro spark__decimal_square(expression) -%}
    cast({{ expression }} as decimal(20, 18)) * cast({{ expression }} as decimal(20, 18))
{%- endmacro %}

{#- A quotient of decimals as a double, as DuckDB returns it. Spark's decimal quotient keeps as
    few as 6 places, and the per-customer figures the models fit on (average order value,
    spend per repeat purchase day, margin rate) would differ from DuckDB's in the 7th digit. -#}
{% macro divide(numerator, denominator) -%}
    {{ return(adapter.dispatch('divide', 'customer_analytics')(numerator, denominator)) }}
{%- endmacro %}

{% macro default__divide(numerator, denominator) -%}
    {{ numerator }} / {{ denominator }}
{%- endmacro %}

{% macro spark__divide(numerator, denominator) -%}
    cast({{ numerator }} as double) / cast({{ denominator }} as double)
{%- endmacro %}
