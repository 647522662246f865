{{ config(materialized='view') }}
-- Tasks (planned calls, meetings, letters) with their results.
with source as (
    {{ raw_source('raw_amocrm', 'tasks', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        account,
        id as task_id,
        'amocrm_task:' || account || ':' || id as task_key,
        record ->> 'entity_type' as entity_type,
        cast(nullif(record ->> 'entity_id', '') as bigint) as entity_id,
        record ->> 'task_type_id' as task_type_id,
        record ->> 'text' as task_text,
        record -> 'result' ->> 'text' as result_text,
        coalesce(cast(record ->> 'is_completed' as boolean), false) as is_completed,
        cast(nullif(record ->> 'responsible_user_id', '') as bigint) as responsible_user_id,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        {{ unix_to_timestamp("record ->> 'complete_till'") }} as complete_till,
        updated_at,
        _loaded_at
    from source
)

select * from final
