{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        pre_hook=["{{ interaction_history_scope() }}"],
        post_hook=["{{ interaction_history_removals_pruned() }}"],
    )
}}
-- Episodic history: one row per contact episode (call, meeting, email, chat, note, complaint,
-- deal stage change) with channel, manager, outcome and links to the deal and the customer.
-- Free text stays in the intermediate layer: it may hold personal data.
--
-- Incremental across publications: the build takes over the previous copy of this mart
-- (macros/carry_marts.sql) and applies what int_customer_interactions_resolved changed since
-- (macros/interaction_history_scope.sql). Rebuilding it whole copied and indexed 6.8 M rows, the
-- slowest model of a new day at medium scale (12.9 s, bench of session 8).
with interactions as (select * from {{ ref('int_customer_interactions_resolved') }}),

final as (
    select
        interaction_key as interaction_id,
        customer_id,
        deal_key as deal_id,
        source,
        occurred_at,
        occurred_date,
        channel,
        activity,
        direction,
        is_complaint,
        manager_key,
        manager_name,
        outcome,
        resolved_at
    from interactions
    {%- if is_incremental() %}
    where resolved_at > {{ interaction_history_since() }}
    {%- endif %}
)

select * from final
