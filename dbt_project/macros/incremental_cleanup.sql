{#- Post-hooks of the incremental models: what the raw layer changes without a new _loaded_at
    (so the incremental filter cannot see it) is reconciled here, on every run. -#}

{#- int_interactions_unified: file interactions that the re-read export no longer holds (crm_files
    loads are whole snapshots, so a vanished row has no batch that could remove it), looked for
    only on a night the export was loaded again (file_export_reloaded()). Bitrix24
    activities the deletion scan flags need nothing here: the scan stamps them with its batch, so
    they arrive as new rows without a party and strategy replace_keys drops them. -#}
{% macro interactions_unified_cleanup() -%}
    with gone as (
        delete from {{ this }} as existing
        where existing.source = 'crm_file'
            and {{ file_export_reloaded() }}
            and not exists (
                select 1 from {{ ref('stg_crm_files__interactions') }} as files
                where files.interaction_key = existing.interaction_key
            )
        returning existing.interaction_key
    )
    insert into ops.interactions_removed (interaction_key) select interaction_key from gone
    {#- no ANALYZE here: the project's post-hook (macros/analyze.sql) decides -#}
{%- endmacro %}

{#- int_interactions_unified, pre-hook: the keys it removes (here and by strategy replace_keys,
    config removed_keys_log) are logged for int_customer_interactions_resolved, which would
    otherwise have to compare all its keys with all of these to find them; that model reads the
    log and empties it. -#}
{% macro interactions_removed_log() -%}
    create table if not exists ops.interactions_removed (
        interaction_key text not null,
        removed_at timestamptz not null default now()
    )
{%- endmacro %}

{#- Incremental strategy 'replace_from' (config incremental_strategy='replace_from',
    replace_from_column='<date column>'): the new batch holds every source row from its smallest
    date on; the target loses every row from that date on, then gets the batch. A date that
    vanished from the source inside the re-read window (a Metrica day whose reload came back
    empty) is thus removed too, which delete+insert by date cannot do. replaced_log={'table': …,
    'column': …}: the column's distinct values among the rows deleted and inserted go to that
    table (the ClientIDs whose visits changed, for int_customers_changed). -#}
{% macro get_incremental_replace_from_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set column = adapter.quote(config.require('replace_from_column')) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set log = config.get('replaced_log') -%}
    {%- if log %}
    with deleted as (
        delete from {{ target }} where {{ column }} >= (select min({{ column }}) from {{ batch }})
        returning {{ log.column }}
    )
    insert into {{ log.table }} ({{ log.column }})
    select {{ log.column }} from deleted where {{ log.column }} is not null
    union
    select {{ log.column }} from {{ batch }} where {{ log.column }} is not null;
    {%- else %}
    delete from {{ target }} where {{ column }} >= (select min({{ column }}) from {{ batch }});
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ batch }}
{%- endmacro %}

{#- The raw table behind a source when it exists, else `fallback` (a staging model that types
    a missing table as an empty relation). For filters that must not go through a view that
    deduplicates with a window function (the filter would not be pushed below the window). -#}
{% macro raw_or(source_name, table_name, fallback) -%}
    {%- set src = source(source_name, table_name) -%}
    {%- if execute and adapter.get_relation(database=src.database, schema=src.schema, identifier=src.identifier) is not none -%}
    {{ src }}
    {%- else -%}
    {{ fallback }}
    {%- endif -%}
{%- endmacro %}

{#- Incremental strategy 'replace_keys' (config incremental_strategy='replace_keys',
    unique_key='<column>', keep_where='<predicate on the batch>'[, removed_keys_log='<table>']):
    target rows whose key is in the batch are deleted, then the batch rows that satisfy keep_where
    are inserted; the keys of those that do not go to removed_keys_log when it is set. A source row that
    stopped being one (deleted upstream, lost its party or its time) thus leaves the target in the
    same statement that would have updated it, with no scan of the whole target afterwards. -#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set key = adapter.quote(arg_dict['unique_key']) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set removed_log = config.get('removed_keys_log') %}
    delete from {{ target }} as existing using {{ batch }} as batch where existing.{{ key }} = batch.{{ key }};
    {%- if removed_log %}
    insert into {{ removed_log }} ({{ key }})
    select {{ key }} from {{ batch }} where not ({{ config.get('keep_where', 'true') }});
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ batch }} where {{ config.get('keep_where', 'true') }}
{%- endmacro %}

{#- The last pre-hook statement of a model that derives a scope of keys again (its pre-hook filled
    pg_temp.<scope>): the scope gets statistics, and the stored rows in it go; the model's query
    then inserts what they are now (strategy append). log_customers: the customers of the deleted
    rows go to ops.customers_left (macros/customer_scope.sql), for the rows that leave them. -#}
{% macro delete_stored_in_scope(scope, key, log_customers=false) -%}
    analyze pg_temp.{{ scope }};
    {% if log_customers -%}
    with deleted as (
    {%- endif %}
    delete from {{ this }} as stored
    using pg_temp.{{ scope }} as scope
    where scope.{{ key }} = stored.{{ key }}
    {%- if log_customers %}
        returning stored.customer_id
    )
    insert into ops.customers_left (customer_id)
    select distinct customer_id from deleted where customer_id is not null
    {%- endif %}
{%- endmacro %}
