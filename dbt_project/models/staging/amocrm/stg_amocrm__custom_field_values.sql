{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ new_batches_snapshot() }}", "{{ custom_field_values_scope() }}"],
        post_hook=["{{ new_batches_consumed() }}",
                   "{{ index_if_missing('entity', ['entity_type', 'account', 'entity_id']) }}",
                   "{{ index_if_missing('node', [amocrm_value_node()]) }}"],
    )
}}
-- custom_fields_values of leads, contacts and companies unnested to one row per value, so a
-- field is found by its name or code from the crm_field_map seed instead of by position.
--
-- Incremental on the load batches it has not read yet (macros/new_batches.sql): the raw tables
-- hold one row per entity (an upsert by (account, id)), so an entity with a row in such a batch
-- has all its values there. The pre-hook deletes those entities' stored values (an entity whose
-- values are all gone yields no row to replace them with), and this query unnests their records
-- again. Unnesting every record each night took 6.5 s of a new day at medium scale (bench of
-- session 9).
{%- set entity_types = amocrm_field_entities() %}
with
{%- for entity_type, table in entity_types %}
{{ table }} as (
    select * from ({{ raw_source('raw_amocrm', table, [('account', 'text'), ('id', 'bigint'), ('record', 'jsonb'),
                                                       ('_loaded_at', 'timestamptz')]) }}) as raw_rows
    {%- if is_incremental() %}
    where _loaded_at >= {{ new_batches_since() }}
    {%- endif %}
),
{%- endfor %}

entities as (
    {%- for entity_type, table in entity_types %}
    select account, '{{ entity_type }}' as entity_type, id as entity_id, record from {{ table }}
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

final as (
    select
        entities.account,
        entities.entity_type,
        entities.entity_id,
        cast(field.value ->> 'field_id' as bigint) as field_id,
        field.value ->> 'field_name' as field_name,
        field.value ->> 'field_code' as field_code,
        field.value ->> 'field_type' as field_type,
        cast(field_value.position as integer) as value_position,
        nullif(trim(field_value.value ->> 'value'), '') as field_value,
        field_value.value ->> 'enum_code' as enum_code
    from entities
    cross join lateral jsonb_array_elements({{ json_array("entities.record -> 'custom_fields_values'") }}) as field (value)
    cross join lateral jsonb_array_elements({{ json_array("field.value -> 'values'") }})
        with ordinality as field_value (value, position)
)

select * from final
