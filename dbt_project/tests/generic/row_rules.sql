{#- Many column tests of one model in one scan of it, instead of one scan per test. Returns a
    row per failing rule: the name that rule's own dbt test has (not_null_fact_sales_date, ...)
    and its failing rows, whose sum is the test's failure count. Rules:
    - not_null, not_negative: column lists; failing rows as in the single tests;
    - unique: column list; failing rows = rows beyond the first of each value (the single test
      counts duplicated values), nulls ignored as there;
    - accepted_values: {column: [values]}; failing rows = rows with another non-null value (the
      single test counts distinct values); numbers are compared as numbers (quote: false);
    - relationships: {column: {to: model name, field: column}}; failing rows = non-null values
      missing from the parent, as in the single test. The parent is joined once, deduplicated,
      so the scan stays one pass and a join never repeats a row;
    - unique_combination: a column list, the model's composite key (unique_combination_of_columns);
      failing rows = rows beyond the first of each key (the single test returns duplicated keys),
      nulls counted as one value as there. It takes a second scan, a DISTINCT, but no dbt node
      of its own: a node costs about as much as the query at the default scale. -#}
{% test row_rules(model, not_null=[], not_negative=[], unique=[], accepted_values={}, relationships={}, unique_combination=[]) %}
{{ config(fail_calc="coalesce(sum(failing_rows), 0)") }}
{%- set name = model.identifier -%}
{%- set rules = [] -%}
{%- for column in not_null -%}
    {%- do rules.append(("not_null_" ~ name ~ "_" ~ column,
        "sum(case when m." ~ column ~ " is null then 1 else 0 end)")) -%}
{%- endfor -%}
{%- for column in unique -%}
    {%- do rules.append(("unique_" ~ name ~ "_" ~ column,
        "count(m." ~ column ~ ") - count(distinct m." ~ column ~ ")")) -%}
{%- endfor -%}
{%- for column in not_negative -%}
    {%- do rules.append(("not_negative_" ~ name ~ "_" ~ column,
        "sum(case when m." ~ column ~ " < 0 then 1 else 0 end)")) -%}
{%- endfor -%}
{%- for column, values in accepted_values.items() -%}
    {%- set quoted = [] -%}
    {%- for value in values -%}
        {%- if value is number -%}{%- do quoted.append(value | string) -%}
        {%- else -%}{%- do quoted.append("'" ~ (value | replace("'", "''")) ~ "'") -%}{%- endif -%}
    {%- endfor -%}
    {%- do rules.append(("accepted_values_" ~ name ~ "_" ~ column,
        "sum(case when m." ~ column ~ " is not null and m." ~ column ~ " not in (" ~ quoted | join(", ") ~ ") then 1 else 0 end)")) -%}
{%- endfor -%}
{%- if unique_combination -%}
    {%- do rules.append(("unique_combination_of_columns_" ~ name ~ "_" ~ unique_combination | join("__"),
        "count(*) - (select count(*) from (select distinct " ~ unique_combination | join(", ")
        ~ " from " ~ model ~ ") as keys)")) -%}
{%- endif -%}
{%- for column, parent in relationships.items() -%}
    {%- do rules.append(("relationships_" ~ name ~ "_" ~ column ~ "__" ~ parent.field ~ "__ref_" ~ parent.to ~ "_",
        "sum(case when m." ~ column ~ " is not null and p" ~ loop.index ~ ".parent_key is null then 1 else 0 end)")) -%}
{%- endfor %}
with counts as (
    select
    {%- for rule, expression in rules %}
        {{ expression }} as rule_{{ loop.index }}{{ "," if not loop.last }}
    {%- endfor %}
    from {{ model }} as m
    {%- for column, parent in relationships.items() %}
    left join (select distinct {{ parent.field }} as parent_key from {{ ref(parent.to) }}) as p{{ loop.index }}
        on m.{{ column }} = p{{ loop.index }}.parent_key
    {%- endfor %}
),

rules as (
    {%- for rule, expression in rules %}
    select {{ loop.index }} as rule_number, '{{ rule }}' as test_name{{ " union all" if not loop.last }}
    {%- endfor %}
),

checked as (
    select
        rules.test_name,
        case rules.rule_number
        {%- for rule, expression in rules %}
            when {{ loop.index }} then counts.rule_{{ loop.index }}
        {%- endfor %}
        end as failing_rows
    from rules
    cross join counts
)

select test_name, failing_rows
from checked
where failing_rows > 0
{% endtest %}
