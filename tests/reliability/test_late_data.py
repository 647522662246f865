"""Late data: a change whose timestamp falls in a day already loaded reaches the API only after
that day's run. The next nightly run's lookback must pick it up: an amoCRM lead and a Bitrix24 deal
edited "yesterday", and a Metrica visit of three days ago that settled late."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from support import ledger_balanced, load_source, start_stack

pytestmark = pytest.mark.integration

MSK = dt.timezone(dt.timedelta(hours=3))
TODAY = dt.date(2026, 11, 20)
LOADED = TODAY - dt.timedelta(days=1)  # the day already loaded when the change arrives
START = (LOADED - dt.timedelta(days=10)).isoformat()


def _rewrite_jsonl(path: Path, pick, change) -> dict:
    """Replace the first record ``pick`` accepts by ``change(record)``; returns the new record."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        record = json.loads(line)
        if pick(record):
            lines[i] = json.dumps(change(record), ensure_ascii=False)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            return json.loads(lines[i])
    raise AssertionError(f"no record to edit in {path}")


def test_crm_changes_arriving_late_are_picked_up_by_the_lookback(demo_copy, conn):
    stack = start_stack(demo_copy, only=("amocrm", "bitrix24"))
    try:
        for source in ("amocrm", "bitrix24"):
            load_source(stack, conn, source, LOADED, start_date=START)
        late = dt.datetime.combine(LOADED - dt.timedelta(days=1), dt.time(15), MSK)
        old = dt.datetime.combine(LOADED - dt.timedelta(days=5), dt.time(), MSK)
        lead = _rewrite_jsonl(
            demo_copy / "amocrm" / "leads.jsonl",
            lambda r: START <= dt.datetime.fromtimestamp(r["updated_at"], MSK).date().isoformat()
            and r["updated_at"] < old.timestamp(),
            lambda r: {**r, "price": 999_999, "updated_at": int(late.timestamp())})
        deal = _rewrite_jsonl(
            demo_copy / "bitrix24" / "deals.jsonl",
            lambda r: START <= r["DATE_MODIFY"][:10] and dt.datetime.fromisoformat(r["DATE_MODIFY"]) < old,
            lambda r: {**r, "OPPORTUNITY": "999999.00", "DATE_MODIFY": late.isoformat()})
        loaded_price = conn.execute("select (record->>'price')::int from raw_amocrm.leads where id = %s",
                                    (lead["id"],)).fetchone()[0]
        assert loaded_price != 999_999

        for source in ("amocrm", "bitrix24"):
            load_source(stack, conn, source, TODAY, start_date=START)  # the next nightly run
    finally:
        stack.stop()

    price, updated = conn.execute("select (record->>'price')::int, updated_at from raw_amocrm.leads where id = %s",
                                  (lead["id"],)).fetchone()
    assert (price, updated) == (999_999, late)
    amount, modified = conn.execute("select record->>'OPPORTUNITY', updated_at from raw_bitrix24.deals "
                                    "where id = %s", (int(deal["ID"]),)).fetchone()
    assert (amount, modified) == ("999999.00", late)
    assert ledger_balanced(conn) == []


def test_a_metrica_visit_that_settles_late_is_picked_up_by_the_lookback(demo_copy, conn):
    counter = json.loads((demo_copy / "manifest.json").read_text())["counters"][0]
    path = demo_copy / "metrica" / str(counter) / "visits.tsv"
    stack = start_stack(demo_copy, only=("metrica",))
    try:
        load_source(stack, conn, "metrica", LOADED, start_date=START, search_phrases=False)
        late_day = (LOADED - dt.timedelta(days=2)).isoformat()
        raw = path.read_bytes()
        header, *lines = raw.split(b"\n")
        date_at = header.decode().split("\t").index("ym:s:date")
        visit_at = header.decode().split("\t").index("ym:s:visitID")
        last = max(i for i, ln in enumerate(lines) if ln and ln.split(b"\t")[date_at].decode() == late_day)
        fields = lines[last].split(b"\t")
        fields[visit_at] = b"777000777"
        lines.insert(last + 1, b"\t".join(fields))  # the file stays sorted by date
        path.write_bytes(b"\n".join([header, *lines]))
        assert conn.execute("select count(*) from raw_metrica.visits where visit_id = '777000777'").fetchone()[0] == 0

        load_source(stack, conn, "metrica", TODAY, start_date=START, search_phrases=False)
    finally:
        stack.stop()
    assert conn.execute("select visit_date::text from raw_metrica.visits where visit_id = '777000777'"
                        ).fetchall() == [(late_day,)]
    assert ledger_balanced(conn) == []
