-- Contact episodes up to run_date with the customer resolved from the identity graph (and the
-- name of an amoCRM user, resolved here rather than in the incremental int_interactions_unified
-- so that a renamed user shows the same on an incremental night as on a full refresh).
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
        interactions.body_text
    from interactions
    inner join nodes on nodes.node_key = interactions.party_node
    left join amo_users
        on interactions.source like 'amocrm%' and amo_users.manager_key = interactions.manager_key
    where {{ local_date('interactions.occurred_at') }} <= {{ run_date() }}
)

select * from final
