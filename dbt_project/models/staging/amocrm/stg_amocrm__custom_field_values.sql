-- custom_fields_values of leads, contacts and companies unnested to one row per value, so a
-- field is found by its name or code from the crm_field_map seed instead of by position.
with leads as (
    {{ raw_source('raw_amocrm', 'leads', [('account', 'text'), ('id', 'bigint'), ('record', 'jsonb')]) }}
),

contacts as (
    {{ raw_source('raw_amocrm', 'contacts', [('account', 'text'), ('id', 'bigint'), ('record', 'jsonb')]) }}
),

companies as (
    {{ raw_source('raw_amocrm', 'companies', [('account', 'text'), ('id', 'bigint'), ('record', 'jsonb')]) }}
),

entities as (
    select account, 'lead' as entity_type, id as entity_id, record from leads
    union all
    select account, 'contact' as entity_type, id as entity_id, record from contacts
    union all
    select account, 'company' as entity_type, id as entity_id, record from companies
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
