{{
    config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key='deal_key',
        on_schema_change='fail',
        indexes=[{'columns': ['deal_key'], 'unique': True}],
        pre_hook=["{{ new_batches_snapshot() }}"],
        post_hook=["{{ new_batches_consumed() }}"],
    )
}}
-- Bitrix24 deals, typed (numbers and ISO dates arrive as strings).
-- Incremental on the load batches it has not read yet (macros/new_batches.sql), as
-- stg_amocrm__leads: a deal's newest raw version replaces its stored row. The raw table keeps
-- every deal (an upsert by (portal, id); a deleted deal is flagged in place, in a batch), so a
-- stored deal never loses its raw row. Rebuilding every deal took 7 s of a new day at medium
-- scale (bench of session 9). The hooks also tell int_orders_unified which batches are here
-- (read_by).
with source as (
    {{ raw_source('raw_bitrix24', 'deals', [
        ('portal', 'text'), ('id', 'bigint'), ('updated_at', 'timestamptz'), ('record', 'jsonb'),
        ('is_deleted', 'boolean'),
    ] + raw_meta_columns()) }}
),

deduplicated as (
    select
        *,
        row_number() over (partition by portal, id order by updated_at desc nulls last, _loaded_at desc) as version_rank
    from source
    {%- if is_incremental() %}
    where _loaded_at >= {{ new_batches_since() }}
    {%- endif %}
),

final as (
    select
        portal,
        id as deal_id,
        'bitrix24_deal:' || portal || ':' || id as deal_key,
        record ->> 'TITLE' as deal_title,
        record ->> 'STAGE_ID' as stage_id,
        coalesce(nullif(record ->> 'CATEGORY_ID', ''), '0') as category_id,
        coalesce({{ to_numeric("record ->> 'OPPORTUNITY'") }}, 0) as opportunity,
        record ->> 'CURRENCY_ID' as currency_id,
        cast(nullif(nullif(record ->> 'CONTACT_ID', ''), '0') as bigint) as contact_id,
        cast(nullif(nullif(record ->> 'COMPANY_ID', ''), '0') as bigint) as company_id,
        cast(nullif(record ->> 'ASSIGNED_BY_ID', '') as bigint) as assigned_by_id,
        nullif(record ->> 'SOURCE_ID', '') as source_id,
        nullif(record ->> 'UTM_SOURCE', '') as utm_source,
        nullif(record ->> 'UTM_MEDIUM', '') as utm_medium,
        nullif(record ->> 'UTM_CAMPAIGN', '') as utm_campaign,
        nullif(record ->> 'UTM_TERM', '') as utm_term,
        {{ iso_to_timestamp("record ->> 'DATE_CREATE'") }} as created_at,
        coalesce({{ iso_to_timestamp("record ->> 'DATE_MODIFY'") }}, updated_at) as updated_at,
        {{ iso_to_timestamp("record ->> 'CLOSEDATE'") }} as close_date,
        record ->> 'CLOSED' = 'Y' as is_closed,
        coalesce(is_deleted, false) as is_deleted,
        record,
        _loaded_at
    from deduplicated
    where version_rank = 1
)

select * from final
