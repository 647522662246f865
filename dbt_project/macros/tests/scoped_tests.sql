{#- Data tests on the large append-mostly facts (staging views over raw notes, tasks, events,
    activities, visits) check only the rows of batches the quality gate has not accepted yet —
    tonight's loads — instead of the whole history every night. Those tests opt in with
    `config: {meta: {scope: unaudited}}`; `--vars '{dbt_test_scope: all}'` checks everything (the
    weekly full audit's counterpart). Uniqueness across nights is held by the raw tables' primary
    keys (amoCRM, Bitrix24) and by the staging dedup (Metrica visits), so a scoped unique test
    loses nothing those do not already guarantee. -#}
{% macro get_where_subquery(relation) -%}
    {%- set filters = [] -%}
    {%- if config.get('where') -%}
        {%- do filters.append(config.get('where')) -%}
    {%- endif -%}
    {%- set scope = (config.get('meta') or {}).get('scope') -%}
    {%- if scope and var('dbt_test_scope', 'unaudited') != 'all' -%}
        {%- do filters.append(unaudited_rows(scope)) -%}
    {%- endif -%}
    {%- if filters -%}
        {%- set subquery -%}
        (select * from {{ relation }} where {{ filters | join(' and ') }}) as dbt_subquery
        {%- endset -%}
        {%- do return(subquery) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The earliest load time of a batch no passing gate has accepted ('infinity' when all are);
    'true' when there is no ledger or no gate record yet (everything is unaudited). scope
    'unaudited' filters on _loaded_at; 'unaudited_visit_dates' on the visit dates those batches
    hold (the visits view deduplicates by date, so a date filter reaches below its window). -#}
{% macro unaudited_rows(scope) -%}
    {%- set ledger = adapter.get_relation(database=target.database, schema='raw_meta', identifier='load_batches') if execute else none -%}
    {%- set accepted = adapter.get_relation(database=target.database, schema='ops', identifier='quality_batches') if execute else none -%}
    {%- if ledger is none or accepted is none -%}
    true
    {%- else -%}
    {%- set since -%}
    (select coalesce(min(batches.finished_at), cast('infinity' as timestamptz))
     from raw_meta.load_batches as batches
     where batches.status = 'loaded'
        and not exists (select from ops.quality_batches as done where done.batch_id = batches.batch_id))
    {%- endset -%}
    {%- if scope == 'unaudited_visit_dates' -%}
    {%- set visits = source('raw_metrica', 'visits') -%}
    {%- if adapter.get_relation(database=visits.database, schema=visits.schema, identifier=visits.identifier) is none -%}
    true
    {%- else -%}
    visit_date >= (select min(visit_date) from {{ visits }} where _loaded_at >= {{ since }})
    {%- endif -%}
    {%- else -%}
    _loaded_at >= {{ since }}
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}
