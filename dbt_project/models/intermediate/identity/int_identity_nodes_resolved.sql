-- Connected components of the identity graph by label propagation: every node repeatedly takes
-- the smallest label among its neighbours, and then jumps to its label's label (pointer jumping),
-- which halves the remaining distance each pass. A bounded number of passes (var identity_passes)
-- keeps the cost linear in the number of edges per pass at any scale; the singular test
-- assert_identity_resolution_converged fails if some component needed more passes.
{{ config(pre_hook="set local work_mem = '128MB'") }}
{#- the passes hash-aggregate every edge: with the default 4MB work_mem each one spills to disk -#}
{%- set passes = var('identity_passes', 10) | int %}
with edge_keys as (
    select node_a, node_b from {{ ref('int_identity_edges_collected') }}
),

-- nodes numbered in node key order, so the smallest id is the smallest key; the passes then
-- hash and sort 8-byte integers instead of text keys (every node has a self-loop, so node_a
-- lists them all)
node_ids as materialized (
    select node_key, row_number() over (order by node_key) as node_id
    from (select distinct node_a as node_key from edge_keys) as nodes
),

edges as materialized (
    select a.node_id as node_a, b.node_id as node_b
    from edge_keys
    inner join node_ids as a on a.node_key = edge_keys.node_a
    inner join node_ids as b on b.node_key = edge_keys.node_b
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
        nodes.node_key,
        split_part(nodes.node_key, ':', 1) as node_type,
        components.node_key as component_key
    from labels_{{ passes }} as labels
    inner join node_ids as nodes on nodes.node_id = labels.node_key
    inner join node_ids as components on components.node_id = labels.label
)

select * from final
