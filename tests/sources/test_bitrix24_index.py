"""The Bitrix24 emulator's indexed lists give exactly the answers of a straightforward implementation.

The emulator keeps each file as raw JSON lines plus ID and timestamp indexes and parses only the
page it returns (plugins/customer_warehouse/emulators/bitrix24.py). The reference below is what
it did before: parse every visible record, filter each with ``_matches``, stable-sort, slice.
Random records (duplicate, missing, textual and date-like IDs, odd and naive timestamps, lines
that are not objects or not JSON, records beyond the horizon) meet random filters, orders,
selects and ``start`` values, one command at a time and as ``batch`` calls chained with
``$result[…]``.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest
from customer_warehouse.emulators import bitrix24 as emulator
from customer_warehouse.sources.bitrix24.client import command
from fastapi.testclient import TestClient

PAGE = 7  # small pages, so a few hundred records make many of them
TODAY = dt.date(2026, 11, 20)
SECRET = "demo-secret"


def reference(rows: list, method_rows: list, params: dict, page_size: int = PAGE) -> dict:
    """The emulator's list before the indexes, on already-visible rows."""
    flt = params.get("filter") or {}
    if not isinstance(flt, dict):
        raise ValueError("filter must be an object")
    order = params.get("order") or {"ID": "ASC"}
    select = params.get("select")
    if isinstance(select, str):
        select = [select]
    start = int(params.get("start", 0) or 0)
    chosen = [r for r in method_rows if not isinstance(r, dict) or emulator._matches(r, flt)]
    for name, direction in reversed(list(order.items())):
        chosen.sort(key=lambda r, n=name: emulator._sort_key(r.get(n) if isinstance(r, dict) else None),
                    reverse=str(direction).upper() == "DESC")
    if start == -1:
        return {"result": [emulator._shape(r, select) for r in chosen[:page_size]]}
    answer = {"result": [emulator._shape(r, select) for r in chosen[start:start + page_size]], "total": len(chosen)}
    if start + page_size < len(chosen):
        answer["next"] = start + page_size
    return answer


def stamp(rnd: random.Random) -> str:
    t = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=rnd.randrange(0, 25 * 86400))
    kind = rnd.random()
    if kind < 0.6:
        return t.astimezone(dt.timezone(dt.timedelta(hours=3))).isoformat()
    if kind < 0.75:
        return t.replace(microsecond=rnd.randrange(1_000_000)).isoformat()
    if kind < 0.85:
        return t.strftime("%Y-%m-%d %H:%M:%S")  # naive: read as UTC
    return t.strftime("%Y-%m-%d")


def odd_time(rnd: random.Random):
    return rnd.choice([None, "", "garbage", 5, "2026-13-01T00:00:00", "12345678901", [1], {"a": 1}])


def odd_id(rnd: random.Random):
    return rnd.choice([None, "abc", 17, "1e3", " 42 ", "", 3.5, "2026-11-18T00:00:00+03:00", True, "-5", [3]])


def record(rnd: random.Random, i: int) -> dict:
    row: dict = {"ID": str(rnd.choice([i, i, i, rnd.randrange(1, 400)]))}
    if rnd.random() < 0.06:
        row["ID"] = odd_id(rnd)
    if rnd.random() < 0.03:
        del row["ID"]
    for name in ("DATE_MODIFY", "LAST_UPDATED"):
        r = rnd.random()
        if r < 0.85:
            row[name] = stamp(rnd)
        elif r < 0.95:
            row[name] = odd_time(rnd)
    row["STAGE_ID"] = rnd.choice(["NEW", "WON", "LOSE"])
    row["TITLE"] = f"Сделка {i}"
    if rnd.random() < 0.5:
        row["UF_CRM_X"] = str(rnd.randrange(10))
    return row


ODD_LINES = ["[1, 2]", "42", "not json", '{"ID": NaN, "DATE_MODIFY": "2026-11-10T00:00:00+03:00"}',
             '{"ID": 123456789012345678901234567890, "TITLE": "big"}', '"text"', '{"ID": "5", "ID": "6"}',
             '{"ID": 1e999}']


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    rnd = random.Random(20261120)
    root: Path = tmp_path_factory.mktemp("b24index")
    folder = root / "bitrix24"
    folder.mkdir()
    lines = [json.dumps(record(rnd, i), ensure_ascii=rnd.random() < 0.5) for i in range(1, 400)]
    for odd in ODD_LINES:
        lines.insert(rnd.randrange(len(lines)), odd)
    lines.insert(100, "   ")
    (folder / "deals.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    app = emulator.create_app(root, today=TODAY, secret=SECRET, bucket_size=None, page_size=PAGE)
    horizon = emulator._horizon(root, TODAY)
    rows = []
    for line in (folder / "deals.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                row = json.loads(line)
            except ValueError:
                row = line
            if isinstance(row, dict):
                t = emulator._when(row.get("DATE_MODIFY") or row.get("LAST_UPDATED"))
                if t is not None and t >= horizon:
                    continue
            rows.append(row)
    return app, rows


def a_filter(rnd: random.Random) -> dict:
    flt: dict = {}
    for _ in range(rnd.randrange(0, 4)):
        kind = rnd.random()
        op = rnd.choice([">", ">=", "<", "<="])
        if kind < 0.4:
            flt[f"{op}ID"] = rnd.choice([rnd.randrange(-5, 420), str(rnd.randrange(0, 420)), "0",
                                         [str(rnd.randrange(0, 400)), str(rnd.randrange(0, 400))],
                                         [[1, 2], "7"], [], "abc", "nan", 12.5])
        elif kind < 0.8:
            name = rnd.choice(["DATE_MODIFY", "DATE_MODIFY", "LAST_UPDATED"])
            flt[f"{op}{name}"] = rnd.choice([stamp(rnd), stamp(rnd), "garbage", 5])
        elif kind < 0.9:
            flt["=STAGE_ID"] = rnd.choice(["NEW", "WON"])
        else:
            flt["!STAGE_ID"] = "LOSE"
    return flt


def params_for(rnd: random.Random) -> dict:
    params: dict = {"filter": a_filter(rnd)}
    order = rnd.random()
    if order < 0.6:
        params["order"] = {"ID": rnd.choice(["ASC", "asc"])}
    elif order < 0.7:
        params["order"] = {"ID": "DESC"}
    elif order < 0.8:
        params["order"] = {"DATE_MODIFY": "ASC", "ID": "ASC"}
    params["start"] = rnd.choice([-1, -1, 0, 0, PAGE, 3 * PAGE, 5, 1000, -3])
    sel = rnd.random()
    if sel < 0.3:
        params["select"] = ["ID"]
    elif sel < 0.5:
        params["select"] = ["*", "UF_*"]
    elif sel < 0.6:
        params["select"] = "TITLE"
    return params


def test_lists_equal_the_reference(portal):
    app, rows = portal
    rnd = random.Random(7)
    for _ in range(1500):
        params = params_for(rnd)
        want = reference(rows, rows, params)
        got = app.state.b24_list("crm.deal.list", params)
        assert got == want, params


def test_offset_pages_of_one_filter_cover_every_match_once(portal):
    """start/next paging reuses the matches of the first page: the pages still add up."""
    app, rows = portal
    flt = {">=DATE_MODIFY": "2026-11-05T00:00:00+03:00", "<=DATE_MODIFY": "2026-11-15T00:00:00+03:00"}
    seen, start = [], 0
    while start is not None:
        answer = app.state.b24_list("crm.deal.list", {"filter": flt, "order": {"ID": "ASC"}, "start": start})
        assert answer == reference(rows, rows, {"filter": flt, "start": start})
        seen += answer["result"]
        start = answer.get("next")
    assert len(seen) == answer["total"] > PAGE


def test_chained_batches_equal_the_reference(portal):
    """``$result[pK-1][6][ID]`` chains (the client's walk, with a page size of 7): each command's
    substituted parameters give the reference's answer."""
    app, rows = portal
    client = TestClient(app)
    rnd = random.Random(11)
    for _ in range(40):
        base = {k: v for k, v in a_filter(rnd).items() if "ID" not in k}
        select = rnd.choice([None, ["ID"], ["*"]])
        cmds = {}
        for k in range(rnd.randrange(1, 12)):
            cursor = rnd.randrange(0, 50) if k == 0 else f"$result[p{k - 1}][{PAGE - 1}][ID]"
            p = {"filter": {**base, ">ID": cursor}, "order": {"ID": "ASC"}, "start": -1}
            if select:
                p["select"] = select
            cmds[f"p{k}"] = command("crm.deal.list", p)
        got = client.post(f"/rest/1/{SECRET}/batch.json", json={"halt": 1, "cmd": cmds}).json()["result"]
        done: dict = {"result": {}, "next": {}, "total": {}, "time": {}, "error": {}}
        for key, line in cmds.items():
            _, _, query = line.partition("?")
            params = emulator.substitute(emulator.parse_php_query(query), done)
            done["result"][key] = reference(rows, rows, params)["result"]
        assert got["result"] == done["result"], cmds


def test_batch_of_offset_pages_is_fast(tmp_path):
    """The incremental's batch (50 ``start`` pages of one date filter) costs one scan, not fifty:
    20,000 records answer well within a second."""
    folder = tmp_path / "bitrix24"
    folder.mkdir()
    with (folder / "activities.jsonl").open("w", encoding="utf-8") as f:
        for i in range(1, 20_001):
            t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=27 * i)
            f.write(json.dumps({"ID": str(i), "LAST_UPDATED": t.isoformat(), "SUBJECT": "Звонок"}) + "\n")
    client = TestClient(emulator.create_app(tmp_path, today=TODAY, secret=SECRET, bucket_size=None))
    flt = {">=LAST_UPDATED": "2026-06-01T00:00:00+00:00", "<=LAST_UPDATED": "2026-09-01T00:00:00+00:00"}
    client.post(f"/rest/1/{SECRET}/crm.activity.list.json", json={"start": 0})  # the file is read once
    cmds = {f"p{s}": command("crm.activity.list", {"filter": flt, "order": {"ID": "ASC"}, "start": s})
            for s in range(0, 2500, 50)}
    t0 = dt.datetime.now()
    got = client.post(f"/rest/1/{SECRET}/batch.json", json={"halt": 0, "cmd": cmds}).json()["result"]
    took = (dt.datetime.now() - t0).total_seconds()
    assert sum(len(v) for v in got["result"].values()) == 2500
    lo, hi = (dt.datetime.fromisoformat(v) for v in flt.values())
    expected = sum(lo <= dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=27 * i) <= hi
                   for i in range(1, 20_001))
    assert set(got["result_total"].values()) == {expected}
    assert took < 2.0, took


def test_a_page_of_the_dated_walk_does_not_copy_the_rest_of_the_table(tmp_path):
    """The history walk (``>=LAST_UPDATED`` since, ``>ID`` cursor, ``start=-1``): a page near the start
    of a 60,000-record list allocates about what the page needs. It used to slice (copy) the
    date-range candidates from the cursor to the end on every page — O(rows left) per page, so the
    whole walk was quadratic (the medium bench's 534 s of emulator CPU)."""
    import tracemalloc

    folder = tmp_path / "bitrix24"
    folder.mkdir()
    n = 60_000
    with (folder / "activities.jsonl").open("w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            t = dt.datetime(2025, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=7 * i)
            f.write(json.dumps({"ID": str(i), "LAST_UPDATED": t.isoformat()}) + "\n")
    app = emulator.create_app(tmp_path, today=TODAY, secret=SECRET, bucket_size=None)
    run = app.state.b24_list
    params = {"filter": {">=LAST_UPDATED": "2025-01-01T00:00:00+00:00", ">ID": 0}, "order": {"ID": "ASC"},
              "start": -1, "select": ["ID"]}
    assert [r["ID"] for r in run("crm.activity.list", params)["result"]] == [str(i) for i in range(1, 51)]
    tracemalloc.start()
    try:
        for cursor in (50, 100, 30_000):
            got = run("crm.activity.list", {**params, "filter": {**params["filter"], ">ID": cursor}})["result"]
            assert [r["ID"] for r in got] == [str(i) for i in range(cursor + 1, cursor + 51)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000, peak  # a copy of the candidates after ID 50 alone is ~480 kB (list: ~2 MB)


def test_the_request_log_keeps_only_the_latest_entries(tmp_path):
    (tmp_path / "bitrix24").mkdir()
    (tmp_path / "bitrix24" / "deals.jsonl").write_text('{"ID": "1", "DATE_MODIFY": "2026-01-01T00:00:00+03:00"}\n')
    for limit, kept in ((3, {3, 4, 5, 6}), (None, {10})):
        client = TestClient(app := emulator.create_app(tmp_path, today=TODAY, secret=SECRET, bucket_size=None,
                                                       request_log_limit=limit))
        for _ in range(10):
            assert client.post(f"/rest/1/{SECRET}/crm.deal.list.json", json={}).json()["total"] == 1
        assert len(app.state.b24.requests) in kept and len(app.state.b24.calls) in kept
        assert app.state.b24.calls[-1] == {"method": "crm.deal.list", "params": {}}


def test_warm_builds_the_date_indexes_the_dated_lists_use(portal):
    """The bench indexes the portal before it times the extract (bench/nightly.py): warm() must
    build the date indexes too, not leave them to the first dated request."""
    app, rows = portal
    app.state.warm()
    deals = app.state.b24_files["deals"].load()
    built = dict(deals._time_index)
    assert set(built) == set(emulator._DATE_FIELDS)
    params = {"filter": {">=LAST_UPDATED": "2026-11-10T00:00:00+03:00", ">ID": 0}, "order": {"ID": "ASC"}, "start": -1}
    assert app.state.b24_list("crm.deal.list", params) == reference(rows, rows, params)
    # the request used the very indexes warm() built
    assert all(deals._time_index[name] is built[name] for name in built)
