-- Label propagation stops at convergence or after var identity_passes passes. If any edge still
-- joins two different components, the graph needed more passes: raise identity_passes.
select
    edges.node_a,
    edges.node_b,
    a.component_key as component_a,
    b.component_key as component_b
from {{ ref('int_identity_edges_collected') }} as edges
inner join {{ ref('int_identity_nodes_resolved') }} as a on a.node_key = edges.node_a
inner join {{ ref('int_identity_nodes_resolved') }} as b on b.node_key = edges.node_b
where a.component_key <> b.component_key
