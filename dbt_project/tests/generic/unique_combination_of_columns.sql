{#- The composite primary key test (as dbt_utils has it), kept local: the dbt package hub is not
    reachable from every machine that builds this project. Returns the duplicated keys. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select
    {{ combination_of_columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ combination_of_columns | join(', ') }}
having count(*) > 1
{% endtest %}
