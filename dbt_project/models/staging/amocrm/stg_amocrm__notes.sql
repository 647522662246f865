{{ config(materialized='view') }}
-- Notes on leads, contacts and companies (calls, messages, manager's notes).
with source as (
    {{ raw_source('raw_amocrm', 'notes', [
        ('account', 'text'), ('entity_type', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'),
        ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        account,
        entity_type,
        id as note_id,
        'amocrm_note:' || account || ':' || entity_type || ':' || id as note_key,
        cast(record ->> 'entity_id' as bigint) as entity_id,
        record ->> 'note_type' as note_type,
        coalesce(record -> 'params' ->> 'text', record -> 'params' ->> 'call_result') as note_text,
        nullif(record -> 'params' ->> 'call_status', '') as call_status,
        cast(nullif(record ->> 'responsible_user_id', '') as bigint) as responsible_user_id,
        cast(nullif(record ->> 'created_by', '') as bigint) as created_by,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        updated_at,
        _loaded_at
    from source
)

select * from final
