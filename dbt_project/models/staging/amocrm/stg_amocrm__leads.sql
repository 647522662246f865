{{
    config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key='lead_key',
        on_schema_change='fail',
        indexes=[{'columns': ['lead_key'], 'unique': True}],
        pre_hook=["{{ new_batches_snapshot() }}"],
        post_hook=["{{ new_batches_consumed() }}"],
    )
}}
-- amoCRM leads (deals), typed. Status 142/143 are amoCRM's system won/lost statuses in every pipeline.
-- Incremental on the load batches it has not read yet (macros/new_batches.sql): a lead's newest
-- raw version replaces its stored row. Parsing every lead's jsonb record again each night was the
-- slowest staging model of a new day (20 s at medium scale, bench of session 4). The raw table
-- keeps every lead (an upsert by (account, id); a deleted lead arrives flagged, in a batch), so
-- a stored lead never loses its raw row; a full refresh rebuilds from raw.
with source as (
    {{ raw_source('raw_amocrm', 'leads', [
        ('account', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
        ('is_deleted', 'boolean'),
    ] + raw_meta_columns()) }}
),

deduplicated as (
    select
        *,
        row_number() over (partition by account, id order by updated_at desc nulls last, _loaded_at desc) as version_rank
    from source
    {%- if is_incremental() %}
    where _loaded_at >= {{ new_batches_since() }}
    {%- endif %}
),

final as (
    select
        account,
        id as lead_id,
        'amocrm_lead:' || account || ':' || id as lead_key,
        record ->> 'name' as lead_name,
        coalesce({{ to_numeric("record ->> 'price'") }}, 0) as price,
        cast(record ->> 'status_id' as bigint) as status_id,
        cast(record ->> 'pipeline_id' as bigint) as pipeline_id,
        cast(nullif(record ->> 'loss_reason_id', '') as bigint) as loss_reason_id,
        record -> '_embedded' -> 'loss_reason' -> 0 ->> 'name' as embedded_loss_reason,
        cast(nullif(record ->> 'responsible_user_id', '') as bigint) as responsible_user_id,
        case
            when record ->> 'status_id' = '142' then 'won'
            when record ->> 'status_id' = '143' then 'lost'
            else 'open'
        end as deal_status,
        {{ unix_to_timestamp("record ->> 'created_at'") }} as created_at,
        coalesce({{ unix_to_timestamp("record ->> 'updated_at'") }}, updated_at) as updated_at,
        {{ unix_to_timestamp("record ->> 'closed_at'") }} as closed_at,
        coalesce(is_deleted, false) or coalesce(cast(record ->> 'is_deleted' as boolean), false) as is_deleted,
        {{ json_array("record -> '_embedded' -> 'contacts'") }} as contacts,
        {{ json_array("record -> '_embedded' -> 'companies'") }} as companies,
        {{ json_array("record -> '_embedded' -> 'tags'") }} as tags,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
