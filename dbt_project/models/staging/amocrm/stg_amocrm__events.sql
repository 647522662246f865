{{ config(materialized='view') }}
-- Events (status changes, calls, chat messages, deletions); event ids are strings.
with source as (
    {{ raw_source('raw_amocrm', 'events', [
        ('account', 'text'), ('id', 'text'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        account,
        id as event_id,
        'amocrm_event:' || account || ':' || id as event_key,
        record ->> 'type' as event_type,
        record ->> 'entity_type' as entity_type,
        cast(nullif(record ->> 'entity_id', '') as bigint) as entity_id,
        cast(nullif(record ->> 'created_by', '') as bigint) as created_by,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        record -> 'value_after' -> 0 -> 'lead_status' ->> 'id' as status_after,
        record -> 'value_before' -> 0 -> 'lead_status' ->> 'id' as status_before,
        _loaded_at
    from source
)

select * from final
