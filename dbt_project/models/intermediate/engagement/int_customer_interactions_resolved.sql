-- Contact episodes up to run_date with the customer resolved from the identity graph.
with interactions as (select * from {{ ref('int_interactions_unified') }}),
nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),

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
        interactions.manager_name,
        interactions.outcome,
        interactions.body_text
    from interactions
    inner join nodes on nodes.node_key = interactions.party_node
    where {{ local_date('interactions.occurred_at') }} <= {{ run_date() }}
)

select * from final
