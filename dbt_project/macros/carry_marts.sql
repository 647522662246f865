{#- on-run-start: the incremental marts take over their copy from the previous publication.

    The publisher renames the published marts to `<published>_prev` (var published_schema, default
    marts) and the audited build to the published name, so every night's build schema starts
    empty and every mart would be rebuilt whole: interaction_history's millions of rows, of which a
    night changes a few thousand. Instead, an incremental mart (materialized='incremental' in the
    build schema) that the build schema lacks takes its table from `<published>_prev` — the
    publication before last, or the last when a publish failed since — and its own scope brings it
    up to date (macros/interaction_history_scope.sql). Write–audit–publish is unchanged: the copy
    was never published again, the build changes it, the gate audits the whole table.

    A copy is taken only when its columns are the ones the model documents, in order: a copy from
    before a change of the model's columns (or one the publisher gave de-identified columns) is
    left behind, and the model is built whole. The rest of `<published>_prev` is dropped here. -#}
{% macro carry_incremental_marts() -%}
    {%- if execute -%}
    {%- set spare_schema = var('published_schema') ~ '_prev' -%}
    {%- set statements = [] -%}
    {%- for node in graph.nodes.values()
          if node.resource_type == 'model' and node.config.materialized == 'incremental'
             and node.fqn[1] == 'marts' -%}
        {%- set built = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- set spare = adapter.get_relation(database=node.database, schema=spare_schema, identifier=node.alias) -%}
        {%- if built is none and spare is not none -%}
            {%- set stored = adapter.get_columns_in_relation(spare) | map(attribute='name') | list -%}
            {%- set documented = node.columns.keys() | list -%}
            {%- if stored == documented -%}
                {%- do statements.append('create schema if not exists ' ~ adapter.quote(node.schema)) -%}
                {%- do statements.append('alter table ' ~ spare ~ ' set schema ' ~ adapter.quote(node.schema)) -%}
                {%- do adapter.cache_added(spare.incorporate(path={'schema': node.schema})) -%}
                {{ log('carried ' ~ spare ~ ' into ' ~ node.schema ~ ' (incremental mart)', info=true) }}
            {%- else -%}
                {{ log('not carried: ' ~ spare ~ ' has columns ' ~ stored ~ ', the model documents ' ~ documented
                       ~ '; it is built whole', info=true) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do statements.append('drop schema if exists ' ~ adapter.quote(spare_schema) ~ ' cascade') -%}
    {{ statements | join(';\n') }}
    {%- endif -%}
{%- endmacro %}
