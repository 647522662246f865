-- Custom field definitions per entity type (for documentation and drift checks).
with source as (
    {{ raw_source('raw_amocrm', 'custom_fields', [
        ('account', 'text'), ('entity_type', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'),
        ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select distinct on (account, entity_type, id)
        account,
        entity_type,
        id as field_id,
        record ->> 'name' as field_name,
        record ->> 'code' as field_code,
        record ->> 'type' as field_type
    from source
    order by account, entity_type, id, updated_at desc nulls last
)

select * from final
