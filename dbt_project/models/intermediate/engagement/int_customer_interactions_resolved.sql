{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=[
            {'columns': ['interaction_key'], 'unique': True}, {'columns': ['resolved_at']},
            {'columns': ['occurred_date']},
        ],
        pre_hook=["{{ new_batches_snapshot(read_by='int_interactions_unified') }}",
                  "{{ interactions_resolved_scope() }}"],
        post_hook=["{{ new_batches_consumed() }}", "{{ interactions_resolved_inputs_used() }}",
                   "{{ interactions_resolved_removals_logged() }}"],
    )
}}
-- Contact episodes up to run_date with the customer resolved from the identity graph (and the
-- name of an amoCRM user, resolved here rather than in the incremental int_interactions_unified
-- so that a renamed user shows the same on an incremental night as on a full refresh).
--
-- Incremental: a night changes few episodes' rows, and rebuilding all of them was the second
-- slowest model of a new day (28 s at medium scale, bench of session 4). The pre-hooks
-- (macros/interactions_scope.sql) find the episodes whose row may have changed — new, edited or
-- removed episodes, episodes of identity nodes that moved to another component or were
-- forgotten, episodes the run date brought in or left out, episodes of renamed users — and
-- delete their stored rows; this query inserts what they are now. No index on customer_id: the
-- per-customer aggregates downstream read every row, and with one the planner chose an index
-- scan's random reads over a sequential scan and a sort, which was slower (customer_episodes).
-- depends_on: {{ ref('int_identity_nodes_resolved') }}
-- depends_on: {{ ref('int_identity_edges_collected') }}
{{ require_stored_columns(['interaction_key', 'customer_id', 'resolved_at']) }}
with interactions as (select * from {{ ref('int_interactions_unified') }}),
nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),
amo_users as (select * from {{ ref('stg_amocrm__users') }}),

final as (
    select
        interactions.interaction_key,
        nodes.customer_id,
        interactions.source,
        interactions.deal_key,
        interactions.occurred_at,
        {{ local_date('interactions.occurred_at') }} as occurred_date,
        interactions.channel,
        interactions.activity,
        interactions.is_complaint,
        interactions.direction,
        interactions.manager_key,
        coalesce(interactions.manager_name, amo_users.user_name) as manager_name,
        interactions.outcome,
        interactions.body_text,
        now() as resolved_at
    from interactions
    inner join nodes on nodes.node_key = interactions.party_node
    left join amo_users
        on interactions.source like 'amocrm%' and amo_users.manager_key = interactions.manager_key
    where {{ local_date('interactions.occurred_at') }} <= {{ run_date() }}
    {%- if is_incremental() %}
        and interactions.interaction_key in (select interaction_key from pg_temp.interactions_scope)
    {%- endif %}
)

select * from final
