{{
    config(
        materialized='incremental',
        incremental_strategy='replace_keys',
        unique_key='node_key',
        keep_where='component_key is not null',
        on_schema_change='fail',
        indexes=[{'columns': ['node_key'], 'unique': True}, {'columns': ['component_key']}],
        pre_hook=["set local work_mem = '128MB'", "{{ identity_scope() }}"],
    )
}}
-- Connected components of the identity graph: every node with its component, keyed by the
-- smallest node key in it. Computed by udf.cw_identity_components (macros/udfs.sql): label
-- propagation that stops at its fixed point and, after the first pass, touches only the nodes
-- whose neighbours' labels just changed. var identity_passes bounds the passes; the singular test
-- assert_identity_resolution_converged fails if some component needed more.
--
-- Incremental: only the components that records changed since the last run can have changed
-- (pg_temp.identity_scope, macros/identity.sql); their nodes are resolved again and replace the
-- stored ones, and a node no record mentions any more is removed (strategy replace_keys).
{{ require_stored_columns(['node_key', 'component_key', 'resolved_at']) }}
{# work_mem: the first pass of a full build hash-aggregates every edge; 4MB would spill to disk #}
with components as (
    select node_key, component_key
    from udf.cw_identity_components(
        '{{ ref('int_identity_edges_collected') }}',
        {% if is_incremental() %}'pg_temp.identity_scope'{% else %}null{% endif %},
        {{ var('identity_passes', 100) | int }}
    )
),

{% if is_incremental() -%}
resolved as (
    select coalesce(scope.node_key, components.node_key) as node_key, components.component_key
    from pg_temp.identity_scope as scope
    full join components on components.node_key = scope.node_key
),
{%- else -%}
resolved as (select node_key, component_key from components),
{%- endif %}

final as (
    select
        node_key,
        split_part(node_key, ':', 1) as node_type,
        component_key,
        now() as resolved_at
    from resolved
)

select * from final
