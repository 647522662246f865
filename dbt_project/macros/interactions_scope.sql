{#- int_customer_interactions_resolved, pre-hooks: the episodes whose stored row may be wrong,
    into pg_temp.interactions_scope, and their stored rows deleted (the model then inserts what
    they are now; an episode it no longer yields stays deleted). An episode's row depends on

    - the episode itself: new or changed in int_interactions_unified, which it merged from the
      load batches this model has not read yet (new_batches_snapshot(read_by=...));
    - its customer: the identity node it hangs on was resolved again (resolved_at later than this
      table's newest row), possibly into another component or out of the customer base;
    - whether it belongs at all: the episode left int_interactions_unified (the file-export
      reconciliation deletes without a batch), its node was forgotten, or it crossed the run date
      either way (a planned task whose day has come; a night re-run for an earlier day). The
      stored keys are compared with the keys that should be stored, both sides in full;
    - the amoCRM user's name: users renamed since the names this table last used
      (ops.interaction_manager_names).
-#}
{% macro interactions_resolved_scope() -%}
    create table if not exists ops.interaction_manager_names (
        manager_key text primary key,
        user_name text
    );
    drop table if exists pg_temp.interactions_scope;
    {%- if is_incremental() %}
    create temp table interactions_scope on commit drop as
    {#- the episodes table is named in each branch rather than once in a CTE: a CTE read several
        times is materialised whole, and the first branch could no longer use its index -#}
    {%- set interactions = ref('int_interactions_unified') %}
    with nodes as (select * from {{ ref('int_customer_nodes_resolved') }}),
    stored_until as (select coalesce(max(resolved_at), '-infinity') as resolved_at from {{ this }}),

    should_be_stored as (
        select interactions.interaction_key
        from {{ interactions }} as interactions
        inner join nodes on nodes.node_key = interactions.party_node
        where {{ local_date('interactions.occurred_at') }} <= {{ run_date() }}
    ),

    renamed_managers as (
        select coalesce(used.manager_key, current_names.manager_key) as manager_key
        from ops.interaction_manager_names as used
        full join {{ ref('stg_amocrm__users') }} as current_names on current_names.manager_key = used.manager_key
        where used.user_name is distinct from current_names.user_name
    )

    select interaction_key
    from {{ interactions }}
    where _loaded_at >= {{ new_batches_since() }}
    union
    select interactions.interaction_key
    from {{ ref('int_identity_nodes_resolved') }} as identity_nodes
    inner join {{ interactions }} as interactions on interactions.party_node = identity_nodes.node_key
    where identity_nodes.resolved_at > (select resolved_at from stored_until)
    union
    select coalesce(stored.interaction_key, should_be_stored.interaction_key)
    from {{ this }} as stored
    full join should_be_stored on should_be_stored.interaction_key = stored.interaction_key
    where stored.interaction_key is null or should_be_stored.interaction_key is null
    union
    select stored.interaction_key
    from {{ this }} as stored
    where stored.source like 'amocrm%' and stored.manager_key in (select manager_key from renamed_managers);
    analyze interactions_scope;
    delete from {{ this }} as stored
    using pg_temp.interactions_scope as scope
    where scope.interaction_key = stored.interaction_key
    {%- endif %}
{%- endmacro %}

{#- post-hook: the names the rows now carry -#}
{% macro interactions_resolved_names_used() -%}
    delete from ops.interaction_manager_names;
    insert into ops.interaction_manager_names (manager_key, user_name)
    select manager_key, user_name from {{ ref('stg_amocrm__users') }}
{%- endmacro %}
