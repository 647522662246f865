{{ config(materialized='view') }}
-- Bitrix24 activities (calls, meetings, emails, tasks) attached to deals, contacts or companies.
with source as (
    {{ raw_source('raw_bitrix24', 'activities', [
        ('portal', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
        ('is_deleted', 'boolean'),
    ] + raw_meta_columns()) }}
),

final as (
    select
        portal,
        id as activity_id,
        'bitrix24_activity:' || portal || ':' || id as activity_key,
        case record ->> 'OWNER_TYPE_ID'
            when '1' then 'lead' when '2' then 'deal' when '3' then 'contact' when '4' then 'company'
        end as owner_type,
        cast(nullif(record ->> 'OWNER_ID', '') as bigint) as owner_id,
        record ->> 'TYPE_ID' as type_id,
        case record ->> 'DIRECTION' when '1' then 'incoming' when '2' then 'outgoing' end as direction,
        record ->> 'SUBJECT' as subject,
        record ->> 'DESCRIPTION' as description,
        record ->> 'COMPLETED' = 'Y' as is_completed,
        cast(nullif(record ->> 'RESPONSIBLE_ID', '') as bigint) as responsible_id,
        coalesce({{ iso_to_timestamp("record ->> 'START_TIME'") }},
                 {{ iso_to_timestamp("record ->> 'CREATED'") }}) as occurred_at,
        coalesce(is_deleted, false) as is_deleted,
        _loaded_at
    from source
)

select * from final
