{#- dbt-spark's seed loader with string values escaped. Its session method pastes each value into
    the SQL as '<value>' unescaped (dbt-spark 1.11, SparkConnectionWrapper._fix_binding), so a
    seed value with a quote (the segment "Can't Lose Them") is a syntax error. Backslash escapes
    are Spark's string-literal escapes. Otherwise dbt-spark's spark__load_csv_rows as is. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {% set batch_size = get_batch_size() %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(batch_size) %}
        {% set bindings = [] %}
        {% for row in chunk %}
            {% for value in row %}
                {% if value is string %}
                    {% do bindings.append(value.replace('\\', '\\\\').replace("'", "\\'")) %}
                {% else %}
                    {% do bindings.append(value) %}
                {% endif %}
            {% endfor %}
        {% endfor %}
        {% set sql %}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                    {%- set type = column_override.get(col_name, inferred_type) -%}
                    cast({{ get_binding_char() }} as {{ type }})
                    {%- if not loop.last %},{%- endif %}
                {%- endfor -%})
                {%- if not loop.last %},{%- endif %}
            {%- endfor %}
        {% endset %}
        {% do adapter.add_query(sql, bindings=bindings, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}
            {% do statements.append(sql) %}
        {% endif %}
    {% endfor %}
    {{ return(statements[0]) }}
{% endmacro %}
