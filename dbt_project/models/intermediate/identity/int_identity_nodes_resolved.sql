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
-- resolved_at is when a node was last resolved; component_changed_at when its component last
-- changed (it keeps its value when a node is resolved again into the same component): most nodes
-- of a touched component stay where they were, and their episodes need no new customer.
{{ require_stored_columns(['node_key', 'component_key', 'resolved_at', 'component_changed_at']) }}
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
        resolved.node_key,
        split_part(resolved.node_key, ':', 1) as node_type,
        resolved.component_key,
        now() as resolved_at,
        {%- if is_incremental() %}
        case
            when stored.component_key = resolved.component_key then stored.component_changed_at
            else now()
        end as component_changed_at
    from resolved
    left join {{ this }} as stored on stored.node_key = resolved.node_key
        {%- else %}
        now() as component_changed_at
    from resolved
        {%- endif %}
)

select * from final
