{#- Post-hooks of the incremental models: what the raw layer changes without a new _loaded_at
    (so the incremental filter cannot see it) is reconciled here, on every run. -#}

{#- int_interactions_unified: rows merged in a state that is no longer an episode (no party or
    no time), Bitrix24 activities the loader's deletion scan flagged deleted (mark_deleted
    updates is_deleted in place, without a new load time), and file interactions that the
    re-read export no longer holds (crm_files loads are whole snapshots). -#}
{% macro interactions_unified_cleanup() -%}
    delete from {{ this }} where party_node is null or occurred_at is null;
    delete from {{ this }} as existing
    where existing.source = 'bitrix24_activity'
        and not exists (
            select 1 from {{ ref('stg_bitrix24__activities') }} as activities
            where activities.activity_key = existing.interaction_key and not activities.is_deleted
        );
    delete from {{ this }} as existing
    where existing.source = 'crm_file'
        and not exists (
            select 1 from {{ ref('stg_crm_files__interactions') }} as files
            where files.interaction_key = existing.interaction_key
        );
    analyze {{ this }}
{%- endmacro %}

{#- Incremental strategy 'replace_from' (config incremental_strategy='replace_from',
    replace_from_column='<date column>'): the new batch holds every source row from its smallest
    date on; the target loses every row from that date on, then gets the batch. A date that
    vanished from the source inside the re-read window (a Metrica day whose reload came back
    empty) is thus removed too, which delete+insert by date cannot do. -#}
{% macro get_incremental_replace_from_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set column = adapter.quote(config.require('replace_from_column')) -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} where {{ column }} >= (select min({{ column }}) from {{ batch }});
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
