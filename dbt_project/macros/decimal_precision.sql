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

{#- A line amount rounded to money, quantity x price x rate (a decimal(9, 4) rate such as a
    discount), exact on both engines. On DuckDB the exact product of a BIGINT quantity is a
    decimal(38, 8) held in a 128-bit integer, and rounding it to decimal(18, 4) divides 128-bit
    integers in software: 3 s of CPU per column at a million customers, most of what pricing the
    order lines cost. With the quantity as decimal(18, 0) DuckDB keeps the product in 64 bits
    (decimal(18, 8)), the same exact value for a tenth of the cost, but it can hold only amounts
    below 10^10; the rows that could exceed it (never in the synthetic data) take the 128-bit
    path, so no amount overflows and every row gets the same value either way. -#}
{% macro line_amount(quantity, price, rate) -%}
    {{ return(adapter.dispatch('line_amount', 'customer_analytics')(quantity, price, rate)) }}
{%- endmacro %}

{% macro default__line_amount(quantity, price, rate) -%}
    cast({{ money_quantity(quantity) }} * {{ price }} * {{ rate }} as decimal(18, 4))
{%- endmacro %}

{% macro duckdb__line_amount(quantity, price, rate) -%}
    case
        when
            abs({{ quantity }}) < 1000000000
            and abs(cast({{ quantity }} as double) * cast({{ price }} as double)) < 1000000000
            and abs({{ rate }}) <= 1
            then cast(cast({{ quantity }} as decimal(18, 0)) * {{ price }} * {{ rate }} as decimal(18, 4))
        else cast({{ quantity }} * {{ price }} * {{ rate }} as decimal(18, 4))
    end
{%- endmacro %}
