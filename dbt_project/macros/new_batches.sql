{#- Which raw rows an incremental model has not read yet, exactly, from the load ledger.

    Every load batch is one transaction: its rows carry the transaction's now() as _loaded_at and
    its ledger row (raw_meta.load_batches) commits with them, finished_at = that same now(). So a
    batch the ledger shows is wholly visible, and its rows are the ones with _loaded_at >= its
    finished_at. A model remembers which batches it has read in ops.transform_batches:

    - pre-hook  new_batches_snapshot(): the batches not yet read, into a temp table (before the
      model's query, so every batch listed there is visible to the query);
    - in the query  new_batches_since(): the earliest load time among them ('infinity' when there
      are none), a lower bound the raw tables' BRIN index on _loaded_at turns into a range scan;
    - post-hook  new_batches_consumed(): those batches are now read.

    A batch that commits while the model runs is not in the snapshot, so the next run reads it:
    unlike a look-back window on _loaded_at, no long-running load can slip past (its rows carry
    its start time, older than rows committed before it), and nothing is re-read night after
    night. Rows of batches already read may be read again when they interleave in time; the
    models merge by key, so that costs time only. Without a ledger (raw tables filled by hand) the
    bound is -infinity: everything is read. -#}

{#- on-run-start: once, before the models (two models' pre-hooks racing on `create schema if not
    exists` would fail one of them) -#}
{% macro new_batches_table() -%}
    create schema if not exists ops;
    create table if not exists ops.transform_batches (
        model text not null,
        batch_id uuid not null,
        read_at timestamptz not null default now(),
        primary key (model, batch_id)
    )
{%- endmacro %}

{#- read_by: a model fed by other models rather than by raw takes only the batches those models
    (one name or a list) have already read: a batch that committed after an upstream model's
    snapshot is not in the upstream table yet, so it must stay unread here too. A table model can
    record what it read the same way: new_batches_snapshot() as its pre-hook, new_batches_consumed()
    as its post-hook (every batch its query could see). -#}
{% macro new_batches_snapshot(read_by=none) -%}
    {%- set ledger = adapter.get_relation(database=target.database, schema='raw_meta',
                                          identifier='load_batches') if execute else none -%}
    drop table if exists pg_temp.new_batches;
    create temp table new_batches on commit drop as
    {% if ledger is not none -%}
    select batches.batch_id, coalesce(batches.finished_at, batches.started_at) as loaded_at
    from raw_meta.load_batches as batches
    {%- for upstream in ([read_by] if read_by is string else read_by or []) %}
    inner join ops.transform_batches as upstream_{{ loop.index }}
        on upstream_{{ loop.index }}.model = '{{ upstream }}' and upstream_{{ loop.index }}.batch_id = batches.batch_id
    {%- endfor %}
    where not exists (
        select from ops.transform_batches as done
        where done.model = '{{ this.identifier }}' and done.batch_id = batches.batch_id
    )
    {%- else -%}
    select cast(null as uuid) as batch_id, cast('-infinity' as timestamptz) as loaded_at
    {%- endif %}
{%- endmacro %}

{% macro new_batches_since() -%}
    (select coalesce(min(loaded_at), cast('infinity' as timestamptz)) from pg_temp.new_batches)
{%- endmacro %}

{% macro new_batches_consumed() -%}
    insert into ops.transform_batches (model, batch_id)
    select '{{ this.identifier }}', batch_id from pg_temp.new_batches where batch_id is not null
    on conflict do nothing
{%- endmacro %}

{#- Whether the CRM file export was loaded again since this model last read it: an unread batch
    of the crm_files loader (sources/crm_files.py, SOURCE). Each such load replaces the export's
    snapshot whole, so a row can vanish with no batch naming it; the models compare every stored
    file row with the export only then. The loader skips a file it has loaded unchanged, so most
    nights there is no such batch. Without a ledger (raw filled by hand) it is always true. -#}
{% macro file_export_reloaded() -%}
    {%- set ledger = adapter.get_relation(database=target.database, schema='raw_meta',
                                          identifier='load_batches') if execute else none -%}
    {%- if ledger is none -%}
    true
    {%- else -%}
    exists (
        select from pg_temp.new_batches as unread
        inner join raw_meta.load_batches as batches on batches.batch_id = unread.batch_id
        where batches.source = 'crm_files'
    )
    {%- endif -%}
{%- endmacro %}
