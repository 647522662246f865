-- Label propagation stops at convergence or after var identity_passes passes. If any edge still
-- joins two different components, the graph needed more passes: raise identity_passes. A node the
-- edges mention but no component holds is a fault of the incremental resolution.
select
    edges.record_node,
    neighbour.node_key as neighbour,
    a.component_key as component_a,
    b.component_key as component_b
from {{ ref('int_identity_edges_collected') }} as edges
cross join lateral unnest(edges.neighbours) as neighbour (node_key)
left join {{ ref('int_identity_nodes_resolved') }} as a on a.node_key = edges.record_node
left join {{ ref('int_identity_nodes_resolved') }} as b on b.node_key = neighbour.node_key
where a.component_key is null or b.component_key is null or a.component_key <> b.component_key
