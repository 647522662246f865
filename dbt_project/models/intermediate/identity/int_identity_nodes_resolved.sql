-- Connected components of the identity graph by label propagation: every node repeatedly takes
-- the smallest label among its neighbours, and then jumps to its label's label (pointer jumping),
-- which halves the remaining distance each pass. A bounded number of passes (var identity_passes)
-- keeps the cost linear in the number of edges per pass at any scale; the singular test
-- assert_identity_resolution_converged fails if some component needed more passes.
{%- set passes = var('identity_passes', 10) | int %}
with edges as (
    select node_a, node_b from {{ ref('int_identity_edges_collected') }}
),

labels_0 as (
    select node_a as node_key, min(node_b) as label
    from edges
    group by node_a
),
{% for i in range(1, passes + 1) %}
propagated_{{ i }} as (
    select edges.node_a as node_key, min(labels_{{ i - 1 }}.label) as label
    from edges
    inner join labels_{{ i - 1 }} on labels_{{ i - 1 }}.node_key = edges.node_b
    group by edges.node_a
),

labels_{{ i }} as (
    select propagated.node_key, least(propagated.label, jumped.label) as label
    from propagated_{{ i }} as propagated
    inner join propagated_{{ i }} as jumped on jumped.node_key = propagated.label
),
{% endfor %}
final as (
    select
        node_key,
        split_part(node_key, ':', 1) as node_type,
        label as component_key
    from labels_{{ passes }}
)

select * from final
