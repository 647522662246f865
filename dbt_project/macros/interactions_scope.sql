{#- int_customer_interactions_resolved, pre-hooks: the episodes whose stored row may be wrong,
    into pg_temp.interactions_scope, and their stored rows deleted (the model then inserts what
    they are now; an episode it no longer yields stays deleted). Every branch is an index lookup
    or reads a night's worth of rows: comparing all stored keys with all the keys that should be
    stored found the same at medium scale, but took 11 s with two workers. An episode's row
    depends on

    - the episode itself: new or changed in int_interactions_unified, which it merged from the
      load batches this model has not read yet (new_batches_snapshot(read_by=...)), or removed
      there (ops.interactions_removed, which int_interactions_unified fills and this model empties);
    - its customer: the identity node it hangs on moved to another component
      (component_changed_at later than this table's newest row; a node seen for the first time
      counts as moved) or was forgotten (its record's edges row became a tombstone);
    - the run date: the episodes dated after the newest stored day up to the run date came due
      (a planned task whose day has come); stored ones after the run date leave (a night re-run
      for an earlier day);
    - the amoCRM user's name: users renamed since the names this table last used
      (ops.interaction_manager_names).

    The scope's keys the query does not insert again are logged for interaction_history
    (macros/interaction_history_scope.sql).
-#}
{% macro interactions_resolved_scope() -%}
    create table if not exists ops.interaction_manager_names (
        manager_key text primary key,
        user_name text
    );
    drop table if exists pg_temp.interactions_scope;
    {%- if is_incremental() %}
    {%- set interactions = ref('int_interactions_unified') %}
    {%- set tz = var('business_timezone') %}
    create temp table interactions_scope on commit drop as
    with stored_until as (
        select
            coalesce(max(resolved_at), '-infinity') as resolved_at,
            coalesce(max(occurred_date), '-infinity') as occurred_date
        from {{ this }}
    ),

    moved_nodes as (
        {{ identity_nodes_moved_since('(select resolved_at from stored_until)') }}
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
    select interaction_key from ops.interactions_removed
    union
    select interactions.interaction_key
    from moved_nodes
    inner join {{ interactions }} as interactions on interactions.party_node = moved_nodes.node_key
    union
    select interaction_key
    from {{ interactions }}
    where occurred_at >= cast((select occurred_date from stored_until) + 1 as timestamp) at time zone '{{ tz }}'
        and occurred_at < cast({{ run_date() }} + 1 as timestamp) at time zone '{{ tz }}'
    union
    select interaction_key
    from {{ this }}
    where occurred_date > {{ run_date() }}
    union
    select stored.interaction_key
    from {{ this }} as stored
    where stored.source like 'amocrm%' and stored.manager_key in (select manager_key from renamed_managers);
    {{ delete_stored_in_scope('interactions_scope', 'interaction_key', log_customers=true) }}
    {%- endif %}
{%- endmacro %}

{#- post-hook: the names the rows now carry; the removals now applied -#}
{% macro interactions_resolved_inputs_used() -%}
    delete from ops.interaction_manager_names;
    insert into ops.interaction_manager_names (manager_key, user_name)
    select manager_key, user_name from {{ ref('stg_amocrm__users') }};
    delete from ops.interactions_removed where removed_at < now()
{%- endmacro %}
