"""The raw-landing core: COPY, upsert-newest, window replacement, ledger balance, drift."""

from __future__ import annotations

import datetime as dt

import pytest
from customer_warehouse.loading import Column, LoadInvariantError, RawBatch, RawTable
from customer_warehouse.loading.tables import json_table
from psycopg import sql

UTC = dt.UTC


def _leads() -> RawTable:
    return json_table("raw_test", "leads", key=("id",))


def test_upsert_keeps_newest_version_and_balances(wh):
    table = _leads()
    with RawBatch(wh, "test", "leads", mode="upsert") as b:
        table.ensure(wh)
        rows = [
            (1, dt.datetime(2026, 1, 2, tzinfo=UTC), {"id": 1, "v": "new"}),
            (1, dt.datetime(2026, 1, 1, tzinfo=UTC), {"id": 1, "v": "old"}),  # same key, older: loses
            (2, dt.datetime(2026, 1, 1, tzinfo=UTC), {"id": 2, "v": "x"}),
        ]
        b.read(len(rows) + 1)
        b.quarantine("no id", '{"v": "broken"}', row_number=4)
        b.upsert_rows(table, ["id", "updated_at", "record"], rows)
    # a later batch with an older version of 2 must not overwrite it
    with RawBatch(wh, "test", "leads", mode="upsert") as b:
        b.read()
        b.upsert_rows(table, ["id", "updated_at", "record"], [(2, dt.datetime(2025, 1, 1, tzinfo=UTC), {"v": "stale"})])
    got = dict(wh.execute("select id, record->>'v' from raw_test.leads order by id").fetchall())
    assert got == {1: "new", 2: "x"}
    ledger = wh.execute(
        "select rows_read, rows_loaded, rows_quarantined, status from raw_meta.load_batches order by started_at"
    ).fetchall()
    assert ledger == [(4, 3, 1, "loaded"), (1, 1, 0, "loaded")]
    assert wh.execute("select reason, raw_text from raw_meta.quarantine").fetchall() == [("no id", '{"v": "broken"}')]


def test_unbalanced_batch_is_refused_and_rolled_back(wh):
    table = _leads()
    with pytest.raises(LoadInvariantError):
        with RawBatch(wh, "test", "leads", mode="upsert") as b:
            table.ensure(wh)
            b.read(3)  # three read, only one written: a silent drop
            b.upsert_rows(table, ["id", "updated_at", "record"], [(1, None, {"a": 1})])
    wh.commit()
    assert wh.execute("select to_regclass('raw_test.leads')").fetchone()[0] is None  # DDL rolled back too
    assert wh.execute("select status from raw_meta.load_batches").fetchall() == [("failed",)]


def test_window_replacement_is_idempotent_and_text_copy_escapes(wh):
    table = RawTable("raw_test", "visits", [Column("counter_id", "bigint"), Column("visit_date", "date"),
                                            Column("note")])

    def load():
        with RawBatch(wh, "test", "visits", mode="window") as b:
            table.ensure(wh)
            b.delete_where(table, sql.SQL("visit_date between %s and %s"), (dt.date(2026, 1, 1), dt.date(2026, 1, 2)))
            lines = ["1\t2026-01-01\ta\\tb", "1\t2026-01-02\tline\\nbreak", "1\t2026-01-02\t\\N"]
            b.read(len(lines))
            b.copy_text(table, ["counter_id", "visit_date", "note"], lines, source_part="part-0")

    load()
    first = wh.execute("select counter_id, visit_date, note from raw_test.visits order by 2, 3").fetchall()
    load()
    second = wh.execute("select counter_id, visit_date, note from raw_test.visits order by 2, 3").fetchall()
    assert first == second
    assert [r[2] for r in first] == ["a\tb", "line\nbreak", None]


def test_schema_drift_adds_and_reports_columns(wh):
    table = RawTable("raw_test", "rows", [Column("a")])
    with RawBatch(wh, "test", "rows") as b:
        table.ensure(wh)
        added = b.note_drift(table, ["a", "brand_new"])
        b.read()
        b.copy_rows(table, ["a", "brand_new"], [("1", "2")])
    assert added == ["brand_new"]
    assert wh.execute("select brand_new from raw_test.rows").fetchone() == ("2",)
    assert wh.execute("select column_name from raw_meta.schema_drift").fetchall() == [("brand_new",)]
    detail = wh.execute("select detail->'new_columns' from raw_meta.load_batches").fetchone()[0]
    assert detail == ["brand_new"]


def test_nul_bytes_and_json_are_kept(wh):
    table = _leads()
    with RawBatch(wh, "test", "leads", mode="upsert") as b:
        table.ensure(wh)
        b.read()
        b.upsert_rows(table, ["id", "updated_at", "record"], [(7, None, {"name": "a\x00b; drop table x;--"})])
    assert wh.execute("select record->>'name' from raw_test.leads").fetchone()[0] == "a\\u0000b; drop table x;--"


def test_a_literal_backslash_u0000_text_is_kept_as_it_is(wh):
    # the text backslash-u-0-0-0-0 is not a NUL: jsonb takes it, and a NUL next to it stays visible
    table = _leads()
    with RawBatch(wh, "test", "leads", mode="upsert") as b:
        table.ensure(wh)
        b.read(2)
        b.upsert_rows(table, ["id", "updated_at", "record"], [(8, None, {"name": "path C:\\u0000dir"}),
                                                            (9, None, {"name": "\\\x00"})])
    names = dict(wh.execute("select id, record->>'name' from raw_test.leads").fetchall())
    assert names == {8: "path C:\\u0000dir", 9: "\\\\u0000"}
