{{
    config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key='interaction_key',
        keep_where='party_node is not null and occurred_at is not null',
        removed_keys_log='ops.interactions_removed',
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['party_node']}, {'columns': ['interaction_key'], 'unique': True},
            {'columns': ['source']}, {'columns': ['_loaded_at']}, {'columns': ['occurred_at']},
        ],
        pre_hook=["{{ new_batches_snapshot() }}", "{{ interactions_removed_log() }}"],
        post_hook=["{{ new_batches_consumed() }}", "{{ interactions_unified_cleanup() }}"],
    )
}}
-- Every contact episode from every source in one shape: amoCRM notes, tasks and events,
-- Bitrix24 activities, file interactions. party_node is the identity node the episode hangs on
-- (a deal, contact, company or file customer); the customer (and an amoCRM user's name) is
-- resolved downstream, so an identity merge or a renamed user never leaves stale values in this
-- incremental table. Incremental on the load batches this model has not read yet (macros
-- new_batches.sql): their rows replace the stored rows with the same key, and a row that is no
-- longer an episode (no party, no time, a Bitrix24 activity the deletion scan flagged — the
-- loader stamps the flag with its batch) removes the stored one (strategy replace_keys, macros/
-- incremental_cleanup.sql). File interactions gone from the re-read export are removed by the
-- post-hook interactions_unified_cleanup. `dbt build --full-refresh` rebuilds everything (needed
-- after a change of the interaction_types / complaint_patterns seeds).
with amo_notes as (select * from {{ ref('stg_amocrm__notes') }}),
amo_tasks as (select * from {{ ref('stg_amocrm__tasks') }}),
amo_events as (select * from {{ ref('stg_amocrm__events') }}),
b24_activities as (select * from {{ ref('stg_bitrix24__activities') }}),
file_interactions as (select * from {{ ref('stg_crm_files__interactions') }}),
types as (select * from {{ ref('interaction_types') }}),
patterns as (select * from {{ ref('complaint_patterns') }}),

unioned as (
    select
        note_key as interaction_key,
        'amocrm_note' as source,
        case
            when entity_type in ('lead', 'leads') then 'amocrm_lead:'
            when entity_type in ('contact', 'contacts') then 'amocrm_contact:'
            when entity_type in ('company', 'companies') then 'amocrm_company:'
        end || account || ':' || entity_id as party_node,
        case when entity_type in ('lead', 'leads') then 'amocrm_lead:' || account || ':' || entity_id end as deal_key,
        created_at as occurred_at,
        note_type as raw_type,
        cast(null as text) as direction,
        account,
        coalesce(responsible_user_id, created_by) as user_id,
        cast(null as text) as manager_name,
        call_status as outcome,
        note_text as body_text,
        _loaded_at
    from amo_notes
    union all
    select
        task_key as interaction_key,
        'amocrm_task' as source,
        case
            when entity_type in ('lead', 'leads') then 'amocrm_lead:'
            when entity_type in ('contact', 'contacts') then 'amocrm_contact:'
            when entity_type in ('company', 'companies') then 'amocrm_company:'
        end || account || ':' || entity_id as party_node,
        case when entity_type in ('lead', 'leads') then 'amocrm_lead:' || account || ':' || entity_id end as deal_key,
        coalesce(complete_till, created_at) as occurred_at,
        task_type_id as raw_type,
        'outgoing' as direction,
        account,
        responsible_user_id as user_id,
        cast(null as text) as manager_name,
        case when is_completed then coalesce('done: ' || result_text, 'done') else 'planned' end as outcome,
        concat_ws(' ', task_text, result_text) as body_text,
        _loaded_at
    from amo_tasks
    union all
    select
        event_key as interaction_key,
        'amocrm_event' as source,
        case
            when entity_type in ('lead', 'leads') then 'amocrm_lead:'
            when entity_type in ('contact', 'contacts') then 'amocrm_contact:'
            when entity_type in ('company', 'companies') then 'amocrm_company:'
        end || account || ':' || entity_id as party_node,
        case when entity_type in ('lead', 'leads') then 'amocrm_lead:' || account || ':' || entity_id end as deal_key,
        created_at as occurred_at,
        event_type as raw_type,
        case when event_type like 'incoming%' then 'incoming' when event_type like 'outgoing%' then 'outgoing' end
            as direction,
        account,
        created_by as user_id,
        cast(null as text) as manager_name,
        case when status_after is not null then 'status ' || status_after end as outcome,
        cast(null as text) as body_text,
        _loaded_at
    from amo_events
    -- only events that are contacts or stage changes; tag edits and field changes are not episodes
    where event_type in (select raw_type from types where source = 'amocrm_event')
    union all
    select
        activity_key as interaction_key,
        'bitrix24_activity' as source,
        -- a deleted activity hangs on no party: it is not an episode (and replace_keys drops it)
        case when not is_deleted then
            case owner_type
                when 'deal' then 'bitrix24_deal:'
                when 'contact' then 'bitrix24_contact:'
                when 'company' then 'bitrix24_company:'
            end || portal || ':' || owner_id
        end as party_node,
        case when owner_type = 'deal' then 'bitrix24_deal:' || portal || ':' || owner_id end as deal_key,
        occurred_at,
        type_id as raw_type,
        direction,
        portal as account,
        responsible_id as user_id,
        'Bitrix24 user ' || responsible_id as manager_name,
        case when is_completed then 'done' else 'planned' end as outcome,
        concat_ws(' ', subject, description) as body_text,
        _loaded_at
    from b24_activities
    union all
    select
        interaction_key,
        'crm_file' as source,
        'crm_file_customer:' || customer_id as party_node,
        cast(null as text) as deal_key,
        occurred_at,
        coalesce(nullif(kind, ''), channel) as raw_type,
        cast(null as text) as direction,
        cast(null as text) as account,
        cast(null as bigint) as user_id,
        manager as manager_name,
        kind as outcome,
        concat_ws(' ', kind, note) as body_text,
        _loaded_at
    from file_interactions
),

new_rows as (
    select * from unioned
    {% if is_incremental() %}
    -- rows that stopped being episodes come too: replace_keys removes their stored versions
    where _loaded_at >= {{ new_batches_since() }}
    {% else %}
    where party_node is not null and occurred_at is not null
    {% endif %}
),

complaint_text as (
    select
        new_rows.*,
        exists (
            select 1 from patterns where coalesce(new_rows.body_text, '') ~* patterns.pattern
        ) as body_is_complaint
    from new_rows
),

final as (
    select
        new_rows.interaction_key,
        new_rows.source,
        new_rows.party_node,
        new_rows.deal_key,
        new_rows.occurred_at,
        new_rows.raw_type,
        coalesce(types.channel, file_channel.channel, 'other') as channel,
        case
            when coalesce(types.is_complaint, false) or new_rows.body_is_complaint then 'complaint'
            else coalesce(types.activity, file_channel.activity, 'other')
        end as activity,
        coalesce(types.is_complaint, false) or new_rows.body_is_complaint as is_complaint,
        new_rows.direction,
        case
            when new_rows.source like 'amocrm%' then 'amocrm:' || new_rows.account || ':' || new_rows.user_id
            when new_rows.source like 'bitrix24%' then 'bitrix24:' || new_rows.account || ':' || new_rows.user_id
            else 'crm_file:' || new_rows.manager_name
        end as manager_key,
        new_rows.manager_name,
        new_rows.outcome,
        new_rows.body_text,
        new_rows._loaded_at
    from complaint_text as new_rows
    left join types
        on types.source = new_rows.source and types.raw_type = lower(new_rows.raw_type)
    -- file exports name the channel in one column and the kind in another: try the channel too
    left join file_interactions
        on new_rows.source = 'crm_file' and file_interactions.interaction_key = new_rows.interaction_key
    left join types as file_channel
        on file_channel.source = 'crm_file' and file_channel.raw_type = file_interactions.channel
)

select * from final
