{#- amoCRM custom field values with the role crm_field_map gives them: `values` (rows of
    stg_amocrm__custom_field_values) joined to `field_map` (the seed's amoCRM rows to use) by the
    field's name, else by its code. Two equi-joins, not one join on `name or code`, whose filter
    runs on every value and mapping of an entity (1.9 s of int_orders_unified, 2 s of
    int_party_records_collected at medium scale). The second skips what the first matched, so each
    (value, mapping) pair comes once, as the OR gave. `values` is read twice: callers define it
    `as not materialized`, or PostgreSQL copies every value first. -#}
{% macro amo_values_mapped(values, field_map) -%}
    select {{ values }}.*, {{ field_map }}.role
    from {{ values }}
    inner join {{ field_map }}
        on {{ field_map }}.entity = {{ values }}.entity_type and {{ field_map }}.field_key = {{ values }}.field_name
    union all
    select {{ values }}.*, {{ field_map }}.role
    from {{ values }}
    inner join {{ field_map }}
        on {{ field_map }}.entity = {{ values }}.entity_type and {{ field_map }}.field_key = {{ values }}.field_code
    where {{ values }}.field_name is distinct from {{ field_map }}.field_key
{%- endmacro %}

{#- An amoCRM custom-field value's identity node ('amocrm_contact:<account>:<id>') as one immutable
    expression, so that stg_amocrm__custom_field_values can index it and int_identity_edges_collected
    look a night's records up through that index instead of scanning all values twice (1.6 M at
    medium: 4 s of a 10 s new day). An index serves only the identical expression: use this macro. -#}
{% macro amocrm_value_node() -%}
    ('amocrm_' || entity_type || ':' || account || ':' || cast(entity_id as text))
{%- endmacro %}
