{#- int_identity_edges_collected: in an incremental run an input keeps only the records the run
    recomputes (the model's CTE `touched`); a full build reads everything. -#}
{% macro identity_only_touched(key) -%}
    {%- if is_incremental() %} where {{ key }} in (select record_node from touched){% endif -%}
{%- endmacro %}

{#- int_identity_nodes_resolved, pre-hook: the nodes to re-resolve in an incremental run, into
    pg_temp.identity_scope. A record whose neighbours changed since the last resolution (its
    changed_at is later than the newest resolved_at) brings its new neighbours and, through the
    stored components of all of them, every node those components held: a component can merge
    with another or split only among these nodes, and every edge of the graph touching them comes
    from a record among them, so label propagation over just these records gives whole,
    correct components. -#}
{% macro identity_scope() -%}
    drop table if exists pg_temp.identity_scope;
    {%- if is_incremental() %}
    create temp table identity_scope on commit drop as
    with changed as (
        select distinct changed_node.node_key
        from {{ ref('int_identity_edges_collected') }} as edges
        cross join lateral unnest(array_append(edges.neighbours, edges.record_node)) as changed_node (node_key)
        where edges.changed_at > (select coalesce(max(stored.resolved_at), '-infinity') from {{ this }} as stored)
    ),

    affected_components as (
        select distinct stored.component_key
        from {{ this }} as stored
        inner join changed on changed.node_key = stored.node_key
    )

    select node_key from changed
    union
    select stored.node_key
    from {{ this }} as stored
    inner join affected_components on affected_components.component_key = stored.component_key;
    analyze identity_scope
    {%- endif %}
{%- endmacro %}

{#- An incremental model whose stored table an earlier version built in another shape cannot be
    merged into: say so, with the fix, instead of failing on a missing column. -#}
{% macro require_stored_columns(columns) -%}
    {%- if execute and is_incremental() -%}
        {%- set stored = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = columns | reject('in', stored) | list -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(this ~ " was built by an earlier version (no column " ~ missing | join(", ")
                ~ "): rebuild it once with a full refresh — `cw transform --date <day> --full-refresh`, or the "
                ~ "DAG's full_refresh param") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- The identity nodes whose customer may differ from the one a table stored at `since` (an SQL
    expression): nodes whose component changed after it (a node seen for the first time counts as
    moved) and records forgotten after it (their edges row became a tombstone). The models that
    call it declare `-- depends_on:` both identity models. -#}
{% macro identity_nodes_moved_since(since) -%}
    select node_key
    from {{ ref('int_identity_nodes_resolved') }}
    where component_changed_at > {{ since }}
    union
    select record_node
    from {{ ref('int_identity_edges_collected') }}
    where changed_at > {{ since }} and cardinality(neighbours) = 0
{%- endmacro %}

{#- files and surveys: their records and keys, read through staging -#}
{% macro identity_staged_records() -%}
    {{ return([
        ('stg_crm_files__customers', 'customer_key'),
        ('stg_crm_files__orders', "'crm_file_customer:' || customer_id"),
        ('stg_crm_files__interactions', "'crm_file_customer:' || customer_id"),
        ('stg_surveys__responses', 'response_key'),
    ]) }}
{%- endmacro %}

{#- The identity records with a row in a load batch the calling model has not read
    (new_batches_snapshot() in its pre-hook): the CRM APIs' raw tables (not staging: a late version
    that loses the staging dedup still changes the custom-field and communication rows the edges
    read); files and surveys through staging, keyed as the edges key them. The callers declare
    `-- depends_on:` the staging models. -#}
{% macro identity_records_loaded() -%}
    {%- for schema, table, prefix in [
        ('raw_amocrm', 'contacts', "'amocrm_contact:' || account"),
        ('raw_amocrm', 'companies', "'amocrm_company:' || account"),
        ('raw_amocrm', 'leads', "'amocrm_lead:' || account"),
        ('raw_bitrix24', 'contacts', "'bitrix24_contact:' || portal"),
        ('raw_bitrix24', 'companies', "'bitrix24_company:' || portal"),
        ('raw_bitrix24', 'deals', "'bitrix24_deal:' || portal"),
    ] %}
    {%- set account = 'account' if schema == 'raw_amocrm' else 'portal' %}
    select {{ prefix }} || ':' || id as record_node
    from ({{ raw_source(schema, table, [(account, 'text'), ('id', 'bigint'), ('_loaded_at', 'timestamptz')]) }}) as raw_rows
    where _loaded_at >= {{ new_batches_since() }}
    union
    {%- endfor %}
    {%- for model, key in identity_staged_records() %}
    select {{ key }} from {{ ref(model) }} where _loaded_at >= {{ new_batches_since() }}
    {{ "union" if not loop.last }}
    {%- endfor %}
{%- endmacro %}
