-- Connected components of the identity graph: every node with its component, keyed by the
-- smallest node key in it. Computed by udf.cw_identity_components (macros/udfs.sql):
-- label propagation that stops at its fixed point and, after the first pass, touches only the
-- nodes whose neighbours' labels just changed. var identity_passes bounds the passes; the singular
-- test assert_identity_resolution_converged fails if some component needed more.
{{ config(pre_hook="set local work_mem = '128MB'") }}
{#- the first pass hash-aggregates every edge: with the default 4MB work_mem it spills to disk -#}
with components as (
    select node_key, component_key
    from udf.cw_identity_components(
        '{{ ref('int_identity_edges_collected') }}', {{ var('identity_passes', 100) | int }}
    )
),

final as (
    select
        node_key,
        split_part(node_key, ':', 1) as node_type,
        component_key
    from components
)

select * from final
