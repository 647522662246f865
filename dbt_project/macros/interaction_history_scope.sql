{#- interaction_history is incremental over its previous copy (macros/carry_marts.sql), which may
    be one night old (a build on an unpublished build) or two (a build on the publication before
    last). It is a projection of int_customer_interactions_resolved, so what it must apply is what
    that model changed since the copy was made:

    - rows that model derived again: their resolved_at is later than the newest resolved_at the
      copy holds (an upstream run stamps all its rows with its transaction's now());
    - rows that model deleted without deriving again (an episode removed upstream, or after the
      run date): it logs their keys with the time (ops.interactions_resolved_removed);
    - everything, when that model was rebuilt from scratch after the copy (a full refresh logs no
      removals): every upstream row is then newer than the copy.

    The removals are kept until no copy a later build could take is older than them. -#}

{#- on-run-start (after new_batches_table(), which creates the schema) -#}
{% macro interactions_resolved_removed_table() -%}
    create table if not exists ops.interactions_resolved_removed (
        interaction_key text not null,
        removed_at timestamptz not null default now()
    )
{%- endmacro %}

{#- int_customer_interactions_resolved, post-hook: the scope's keys that its query did not insert
    again are gone from it -#}
{% macro interactions_resolved_removals_logged() -%}
    {%- if is_incremental() %}
    insert into ops.interactions_resolved_removed (interaction_key)
    select scope.interaction_key
    from pg_temp.interactions_scope as scope
    where not exists (
        select 1 from {{ this }} as kept where kept.interaction_key = scope.interaction_key
    )
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}

{#- The copy's watermark: the newest resolved_at it holds, as a literal. Read when the SQL is
    rendered (the model's query and its pre-hook both, before either changes the table), because
    the planner can estimate `resolved_at > <literal>` from the statistics and take the index on
    resolved_at; against a subquery it assumed a third of 6.8 M rows and scanned them all. -#}
{% macro interaction_history_since() -%}
    {%- set since = none -%}
    {%- if execute and is_incremental() -%}
        {%- set since = run_query("select max(resolved_at)::text from " ~ this).columns[0].values()[0] -%}
    {%- endif -%}
    '{{ since or "-infinity" }}'::timestamptz
{%- endmacro %}

{#- interaction_history, pre-hook: its stored rows that int_customer_interactions_resolved changed
    or removed since are deleted; the model's query then inserts that model's newer rows -#}
{% macro interaction_history_scope() -%}
    {%- if is_incremental() %}
    {%- set resolved = ref('int_customer_interactions_resolved') %}
    {%- set since = interaction_history_since() %}
    delete from {{ this }}
    where (select min(resolved_at) from {{ resolved }}) > {{ since }};
    {#- an array, so that each key is an index lookup: joined to the keys, the planner hashed
        them and scanned all 6.8 M stored rows (5.9 s for 24 k deletes at medium) #}
    delete from {{ this }}
    where interaction_id = any(array(
        select interaction_key from ops.interactions_resolved_removed where removed_at >= {{ since }}
        union
        select interaction_key from {{ resolved }} where resolved_at > {{ since }}
    ))
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}

{#- interaction_history, post-hook: forget the removals older than every copy a later build may
    take: this table, and the published one (the next spare) when it has resolved_at -#}
{% macro interaction_history_removals_pruned() -%}
    {%- set published = adapter.get_relation(database=this.database, schema=var('published_schema'),
                                             identifier=this.identifier) -%}
    {%- set published_has_watermark = published is not none
          and 'resolved_at' in (adapter.get_columns_in_relation(published) | map(attribute='name') | list) -%}
    {%- if published is none or published_has_watermark %}
    delete from ops.interactions_resolved_removed
    where removed_at < least(
        (select max(resolved_at) from {{ this }})
        {%- if published_has_watermark %},
        (select max(resolved_at) from {{ published }})
        {%- endif %}
    )
    {%- else %}
    select 1
    {%- endif %}
{%- endmacro %}
