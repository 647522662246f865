{#- A snapshot whose query returns only the rows that may have changed (config
    `meta: {compare_query_keys_only: true}`, snap_deal_stages) reads the current versions of only
    the keys its query returns.

    dbt's snapshot staging query reads every current version of the snapshot (`snapshotted_data`)
    and joins it twice with the query's rows; PostgreSQL materialises that CTE, so each night copied
    every current deal version (1.4 M at medium scale) to compare a night's few thousand changed
    orders (int_orders_changed). With hard_deletes 'ignore' the query's rows are all that version
    is joined with (a left join from them, an inner join), so a version whose key the query does
    not return changes nothing: reading only the query's keys gives the same staging rows. They are
    looked up through the partial index snapshot_current_version_index() adds (the snapshot's
    post-hook); the staging query is otherwise dbt's own. A snapshot of every row (snap_customers)
    gains nothing from the lookup and lost 4 s to it at medium scale, so it is opt-in.

    The keys go in as an array, computed once: as `key in (select … from snapshot_query)` the
    planner, misled by statistics not yet refreshed after the night's insert into
    int_orders_unified, once rescanned the query's 11 k rows for each of 134 k versions (minutes,
    in a small-scale bench). An array is looked up by index or hashed, whatever the estimates.

    With hard_deletes 'invalidate' or 'new_record' a key missing from the query is a deletion, so
    there every current version must be read, and dbt's query is used unchanged (as for a
    composite unique_key).
-#}
{% macro postgres__snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- set keys = strategy.unique_key if strategy.unique_key is not string else [strategy.unique_key] -%}
    {%- set scoped = (config.get('meta') or {}).get('compare_query_keys_only', false) -%}
    {%- if scoped and keys | length == 1 and strategy.hard_deletes in (none, 'ignore') -%}
        {%- set key = keys[0] -%}
        {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
        {#- snapshot_query is the staging query's first CTE: the snapshot's own query -#}
        {%- set current_versions -%}
            (select * from {{ target_relation }}
             where {{ key }} = any(array(select {{ key }} from snapshot_query))
                 and {{ columns.dbt_valid_to }} is null) as current_versions
        {%- endset -%}
        {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, current_versions)) }}
    {%- endif -%}
    {{ return(dbt.default__snapshot_staging_table(strategy, source_sql, target_relation)) }}
{%- endmacro %}

{#- post-hook of such a snapshot: the index the scoped comparison looks current versions up by, and
    the one dbt's merge closes a changed version by (it joins on dbt_scd_id) -#}
{% macro snapshot_current_version_index() -%}
    {%- set keys = config.get('unique_key') -%}
    {%- set columns = config.get('snapshot_table_column_names') or get_snapshot_table_column_names() -%}
    {{ index_if_missing('current_version', [keys] if keys is string else keys, columns.dbt_valid_to ~ ' is null') }};
    {{ index_if_missing('scd_id', [columns.dbt_scd_id]) }}
{%- endmacro %}
