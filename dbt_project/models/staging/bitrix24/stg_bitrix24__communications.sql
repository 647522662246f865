-- PHONE and EMAIL multi-fields of Bitrix24 contacts and companies, one row per value.
with contacts as (
    {{ raw_source('raw_bitrix24', 'contacts', [('portal', 'text'), ('id', 'bigint'), ('record', 'jsonb')]) }}
),

companies as (
    {{ raw_source('raw_bitrix24', 'companies', [('portal', 'text'), ('id', 'bigint'), ('record', 'jsonb')]) }}
),

entities as (
    select portal, 'contact' as entity_type, id as entity_id, record from contacts
    union all
    select portal, 'company' as entity_type, id as entity_id, record from companies
),

kinds as (
    select 'PHONE' as kind
    union all
    select 'EMAIL' as kind
),

final as (
    select
        entities.portal,
        entities.entity_type,
        entities.entity_id,
        lower(kinds.kind) as kind,
        nullif(trim(item.value ->> 'VALUE'), '') as value,
        item.value ->> 'VALUE_TYPE' as value_type
    from entities
    cross join kinds
    cross join lateral jsonb_array_elements({{ json_array("entities.record -> kinds.kind") }}) as item (value)
)

select * from final
