{#- Generic test: every non-null value is a probability, 0 ≤ v ≤ 1. (dbt_utils.accepted_range without the hub.) -#}
{% test probability(model, column_name) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} < 0 or {{ column_name }} > 1
{% endtest %}
