"""The loader's fast path (whole segments of a Metrica part straight into COPY, batch metadata from
column defaults) against the line-by-line path it falls back to: the same rows land either way,
a segment PostgreSQL refuses leaves nothing behind, and every line is counted once — loaded or
quarantined with its reason and physical line number."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from customer_warehouse.loading import Column, RawBatch, RawTable
from customer_warehouse.sources.metrica import load
from customer_warehouse.sources.metrica.load import VISITS, load_parts
from customer_warehouse.sources.metrica.logs_client import Part
from psycopg import sql

pytestmark = pytest.mark.integration

COUNTER = 77
TZ = "Europe/Moscow"
HEADER = ["ym:s:visitID", "ym:s:date", "ym:s:startURL", "ym:s:goalsID"]
FIRST, LAST = dt.date(2026, 1, 1), dt.date(2026, 1, 10)
COLUMNS = ("visit_id, visit_date::text, counter_id, counter_timezone, date, start_url, goals_id, "
           "_interval_start, _interval_end, _source_part")


def _lines(days=range(1, 11), per_day=40) -> list[bytes]:
    urls = [r"https://x.ru/?q=it\'s", r"https://x.ru/a\tb", "https://x.ru/п", r"\N"]
    return [f"{d}{i:04d}\t2026-01-{d:02d}\t{urls[i % len(urls)]}\t[{i}]".encode()
            for d in days for i in range(per_day)]


def _part(tmp_path: Path, lines: list[bytes], name="part") -> Part:
    path = tmp_path / f"{name}.tsv"
    path.write_bytes("\t".join(HEADER).encode() + b"\n" + b"\n".join(lines) + b"\n")
    return Part(request_id=1, number=0, path=path, header=HEADER, rows=len(lines), size=path.stat().st_size)


def _load(wh, tmp_path: Path, part: Part):
    result = load_parts(wh, VISITS, COUNTER, HEADER, TZ, FIRST, LAST, [part], "full", tmp_path, {})
    wh.commit()
    return result


def _rows(wh) -> list[tuple]:
    return wh.execute(f"select {COLUMNS} from raw_metrica.visits order by visit_id").fetchall()


def _quarantine(wh) -> list[tuple]:
    return wh.execute("select row_number, reason from raw_meta.quarantine order by row_number").fetchall()


def _refusals(caplog) -> int:
    return sum("fast COPY" in r.getMessage() for r in caplog.records)


def test_fast_and_line_by_line_paths_land_the_same_rows(wh, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="customer_warehouse")
    good = _lines()
    fast = _load(wh, tmp_path, _part(tmp_path, good, "good"))
    assert _refusals(caplog) == 0  # all of it went through the fast path
    landed_fast = _rows(wh)
    loaded_at = wh.execute("select count(distinct _loaded_at), count(distinct _batch_id) "
                           "from raw_metrica.visits").fetchone()
    # the same lines plus one with three fields: PostgreSQL refuses the segment, which is walked
    # line by line (the path the loader had before the fast one)
    slow = _load(wh, tmp_path, _part(tmp_path, [*good, b"1\t2\t3"], "bad"))
    assert _refusals(caplog) == 1
    assert _rows(wh) == landed_fast
    assert (fast.rows_read, fast.rows_loaded, fast.rows_quarantined) == (400, 400, 0)
    assert (slow.rows_read, slow.rows_loaded, slow.rows_quarantined) == (401, 400, 1)
    assert _quarantine(wh) == [(402, "3 columns where the header has 4")]
    assert loaded_at == (1, 1)
    by_id = {r[0]: r for r in landed_fast}
    row = by_id["10001"]
    assert row[:7] == ("10001", "2026-01-01", COUNTER, TZ, "2026-01-01", "https://x.ru/a\tb", "[1]")
    assert row[9] == "request 1 part 0"
    assert by_id["10000"][5] == "https://x.ru/?q=it's" and by_id["10003"][5] is None
    ledger = wh.execute("select batch_id from raw_meta.load_batches order by started_at").fetchall()
    assert wh.execute("select distinct _batch_id from raw_metrica.visits").fetchall() == [ledger[-1]]


def test_only_the_refused_segments_go_line_by_line_and_nothing_is_left_twice(wh, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(load, "SEGMENT", 2048)  # about 50 to 100 lines a segment
    caplog.set_level(logging.INFO, logger="customer_warehouse")
    lines = _lines()
    lines[102] = lines[102].replace("п".encode(), "п".encode("cp1251"))  # seen only by the server
    lines[150] = lines[150].replace(b"2026-01-04", b"2025-12-31")  # outside the requested dates
    lines[300] = lines[300].rsplit(b"\t", 1)[0] + b"\t[\\1]"  # an escape COPY would read differently
    result = _load(wh, tmp_path, _part(tmp_path, lines))
    starts = [segment.first_line for segment in load._PartReader(tmp_path / "part.tsv").segments()]
    assert len(starts) >= 4
    assert len({sum(no <= at + 2 for no in starts) for at in (102, 150, 300)}) == 3  # three segments
    assert _refusals(caplog) == 3  # bad UTF-8 (by PostgreSQL), the date and the escape (by us)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (400, 398, 2)
    assert _quarantine(wh) == [(104, "not valid UTF-8"),
                               (152, "ym:s:date '2025-12-31' is not a date in 2026-01-01..2026-01-10")]
    ids = [r[0] for r in wh.execute("select visit_id from raw_metrica.visits order by visit_id")]
    assert len(ids) == len(set(ids)) == 398
    assert wh.execute("select goals_id from raw_metrica.visits where visit_id = %s",
                      (lines[300].split(b"\t")[0].decode(),)).fetchone() == ("[1]",)  # ClickHouse: \1 is "1"


def test_lines_out_of_date_order_are_caught_by_the_server_check(wh, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="customer_warehouse")
    lines = _lines()
    lines[5], lines[200] = lines[200], lines[5]  # a day-6 line among day 1's and back
    result = _load(wh, tmp_path, _part(tmp_path, lines))
    assert _refusals(caplog) == 1
    assert (result.rows_loaded, result.rows_quarantined) == (400, 0)
    wrong = wh.execute("select count(*) from raw_metrica.visits where visit_date::text <> date").fetchone()[0]
    assert wrong == 0


def test_records_continued_over_a_line_feed_stay_whole_across_segment_cuts(wh, tmp_path, monkeypatch):
    monkeypatch.setattr(load, "SEGMENT", 512)
    lines = _lines(per_day=10)
    broken = [at for at, line in enumerate(lines) if b"a\\tb" in line and at % 3]
    for at in broken:  # backslash + a real line feed: a newline inside the value
        lines[at] = lines[at].replace(b"https://", b"line\\\nbreak https://")
    result = _load(wh, tmp_path, _part(tmp_path, lines))
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (100, 100, 0)
    landed = wh.execute("select count(*) from raw_metrica.visits where start_url = %s",
                        ("line\nbreak https://x.ru/a\tb",)).fetchone()[0]
    assert landed == len(broken) > 10


def test_a_part_without_a_final_line_feed_or_without_rows(wh, tmp_path):
    part = _part(tmp_path, _lines(per_day=2))
    part.path.write_bytes(part.path.read_bytes().rstrip(b"\n"))
    assert _load(wh, tmp_path, part).rows_loaded == 20
    empty = _part(tmp_path, [], "empty")
    empty.path.write_bytes("\t".join(HEADER).encode() + b"\n")
    result = _load(wh, tmp_path, empty)
    assert (result.rows_read, result.rows_loaded) == (0, 0)


def test_copy_chunks_is_all_or_nothing_and_takes_metadata_from_defaults(wh):
    table = RawTable("raw_test", "events", [Column("k", "bigint not null"), Column("tag"), Column("note")])
    with RawBatch(wh, "test", "events", interval=(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None)) as b:
        table.ensure(wh)
        assert b.copy_chunks(table, ["note"], [b"a\n", b"b\n"], rows=2, source_part="p1",
                             constants={"k": 5, "tag": "x"})
        # the second line has a field too many: refused, and the first line is not left behind
        assert not b.copy_chunks(table, ["note"], [b"c\nd\te\n"], rows=2, constants={"k": 6, "tag": "y"})
        # a filter that drops a row makes the count differ: refused as well
        assert not b.copy_chunks(table, ["note"], [b"f\ng\n"], rows=2, constants={"k": 7, "tag": "z"},
                                 where=sql.SQL("note <> 'g'"))
        b.read(2)
    rows = wh.execute("select k, tag, note, _batch_id::text, _interval_start, _interval_end, _source_part "
                      "from raw_test.events order by note").fetchall()
    assert rows == [(5, "x", "a", b.batch_id, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None, "p1"),
                    (5, "x", "b", b.batch_id, dt.datetime(2026, 1, 1, tzinfo=dt.UTC), None, "p1")]
    # outside such a COPY the defaults give nothing: a row without its key is refused, not invented
    with pytest.raises(Exception, match="null value"):
        wh.execute("insert into raw_test.events (note) values ('z')")
    wh.rollback()


def test_the_defaults_come_back_after_raw_meta_is_dropped(wh, tmp_path):
    _load(wh, tmp_path, _part(tmp_path, _lines(per_day=2)))
    wh.execute("drop schema raw_meta cascade")  # takes the column defaults with it
    wh.commit()
    result = _load(wh, tmp_path, _part(tmp_path, _lines(per_day=3), "again"))
    assert (result.rows_read, result.rows_loaded) == (30, 30)
    assert wh.execute("select count(*), count(distinct _batch_id) from raw_metrica.visits").fetchone() == (30, 1)
