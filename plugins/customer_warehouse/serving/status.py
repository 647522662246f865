"""``marts.data_status``: what the data-status page shows, readable by ``bi_reader``.

The facts live in ``ops.publish_log``, ``ops.quality_results`` and ``raw_meta.load_batches``,
which BI must not read. A view in the published schema, owned by the publisher, exposes just the
summary (views run with their owner's rights, so ``bi_reader`` needs no grant on ``ops``).

Long format, one row per fact:

=============  ==========================  ==================================================
kind           item                        meaning of the other columns
=============  ==========================  ==================================================
publish        last_published              status 'published', as_of = published_at,
                                           data_until = run_date
publish        last_attempt                status of the newest attempt (published / blocked /
                                           failed), as_of, detail = first line of its message
quality        gate                        status passed / warnings / blocked of the newest
                                           gate run, as_of = checked_at, value = failed
                                           checks, detail = counts by status
quality_check  <table>.<check>             a check of that run that did not pass: status,
                                           severity in detail with observed vs expected
source         <source>                    status of the newest batch, as_of = last loaded
                                           batch's finished_at, data_until = max interval_end,
                                           value = hours since as_of, rows_loaded /
                                           rows_quarantined = in the 24 h before the newest
                                           batch
=============  ==========================  ==================================================

Columns: ``kind text, item text, status text, as_of timestamptz, data_until timestamptz,
value numeric, rows_loaded bigint, rows_quarantined bigint, detail text``. Parts whose source
table does not exist are left out, so the view can be created on a fresh warehouse. Call
:func:`create_status_view` on the build schema inside the publish transaction, before the swap,
so it is published with the marts it describes.
"""

from __future__ import annotations

from psycopg import sql

VIEW = "data_status"

PUBLISH_PART = """
select 'publish'::text as kind, 'last_published'::text as item, status, published_at as as_of,
       run_date::timestamptz as data_until, null::numeric as value, null::bigint as rows_loaded,
       null::bigint as rows_quarantined, null::text as detail
from (select * from ops.publish_log where status = 'published'
      order by published_at desc, publish_id desc limit 1) as last_ok
union all
select 'publish', 'last_attempt', status, published_at, run_date::timestamptz, null::numeric, null::bigint,
       null::bigint, split_part(coalesce(message, ''), E'\\n', 1)
from (select * from ops.publish_log order by published_at desc, publish_id desc limit 1) as last_try
"""

QUALITY_PART = """
select 'quality'::text, 'gate'::text,
       case when count(*) filter (where severity = 'block' and status in ('failed', 'error')) > 0 then 'blocked'
            when count(*) filter (where status in ('failed', 'error')) > 0 then 'warnings'
            else 'passed' end,
       max(checked_at), max(run_date)::timestamptz,
       count(*) filter (where status in ('failed', 'error'))::numeric, null::bigint, null::bigint,
       format('%s passed, %s failed, %s skipped', count(*) filter (where status = 'passed'),
              count(*) filter (where status in ('failed', 'error')), count(*) filter (where status = 'skipped'))
from ops.quality_results
where run_id = (select run_id from ops.quality_results order by checked_at desc limit 1)
having count(*) > 0
union all
select 'quality_check', table_name || '.' || check_name, status, checked_at, run_date::timestamptz, null::numeric,
       null::bigint, null::bigint, format('%s: observed %s, expected %s', severity, coalesce(observed, '—'), coalesce(expected, '—'))
from ops.quality_results
where run_id = (select run_id from ops.quality_results order by checked_at desc limit 1)
  and status not in ('passed', 'skipped')
"""

SOURCE_PART = """
select 'source'::text, source, last_status, last_loaded_at, data_until,
       round(cast(extract(epoch from now() - last_loaded_at) / 3600 as numeric), 1),
       rows_loaded_24h::bigint, rows_quarantined_24h::bigint, null::text
from (
    select source,
           (array_agg(status order by coalesce(finished_at, started_at) desc))[1] as last_status,
           max(finished_at) filter (where status = 'loaded') as last_loaded_at,
           max(interval_end) filter (where status = 'loaded') as data_until,
           coalesce(sum(rows_loaded) filter (where status = 'loaded' and finished_at >
               (select max(finished_at) from raw_meta.load_batches b where b.source = batches.source) - interval '24 hours'), 0)
               as rows_loaded_24h,
           coalesce(sum(rows_quarantined) filter (where status = 'loaded' and finished_at >
               (select max(finished_at) from raw_meta.load_batches b where b.source = batches.source) - interval '24 hours'), 0)
               as rows_quarantined_24h
    from raw_meta.load_batches as batches
    group by source
) as per_source
"""

PARTS = (("ops.publish_log", PUBLISH_PART), ("ops.quality_results", QUALITY_PART),
         ("raw_meta.load_batches", SOURCE_PART))

EMPTY = ("select null::text as kind, null::text as item, null::text as status, null::timestamptz as as_of, "
         "null::timestamptz as data_until, null::numeric as value, null::bigint as rows_loaded, "
         "null::bigint as rows_quarantined, null::text as detail where false")


def status_view_sql(conn) -> str:
    """The view's select, built from the bookkeeping tables that exist in this database."""
    parts = [EMPTY]
    for table, part in PARTS:
        if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is not None:
            parts.append(part.strip())
    return "\nunion all\n".join(f"({p})" for p in parts)


def create_status_view(conn, schema: str = "marts") -> None:
    """(Re)create ``<schema>.data_status`` in the caller's transaction."""
    conn.execute(sql.SQL("create or replace view {} as {}").format(
        sql.Identifier(schema, VIEW), sql.SQL(status_view_sql(conn))))
