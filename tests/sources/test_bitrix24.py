"""Bitrix24 REST client and loader against the emulator and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path

import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators import bitrix24 as emulator
from customer_warehouse.emulators.server import running
from customer_warehouse.loading import get_state
from customer_warehouse.sources import Window, bitrix24
from customer_warehouse.sources.bitrix24.client import command

TABLES = ("deals", "contacts", "companies", "activities", "deal_stages", "deal_userfields")
SECRET = "demo-secret"


def when(day: int, hour: int = 12, month: int = 8) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:00:00+03:00"


def deal(i: int, modified: str, **kw) -> dict:
    return {"ID": str(i), "TITLE": f"Зерно HoReCa 5 кг #{i}", "STAGE_ID": "WON" if i % 3 else "LOSE",
            "OPPORTUNITY": f"{1000 + i}.00", "CURRENCY_ID": "RUB", "CONTACT_ID": str(500 + i % 7),
            "DATE_CREATE": when(1), "DATE_MODIFY": modified, "UF_CRM_PURPOSE": "Для нашей кофейни",
            "UF_CRM_YM_CLIENT_ID": f"17{i:08d}", **kw}


def deals(n: int = 120) -> list[dict]:
    return [deal(i, when(1 + i % 28, 8 + i % 10)) for i in range(1, n + 1)]


def write(root: Path, name: str, items: list) -> None:
    folder = root / "bitrix24"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items]
    (folder / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture()
def data(tmp_path) -> Path:
    write(tmp_path, "deals", deals())
    write(tmp_path, "contacts", [{"ID": str(500 + i), "NAME": f"Клиент {i}", "DATE_MODIFY": when(2 + i),
                                  "EMAIL": [{"VALUE": f"c{i}@x.ru", "VALUE_TYPE": "WORK"}]} for i in range(7)])
    write(tmp_path, "companies", [{"ID": "900", "TITLE": "Кофейня на Арбате", "DATE_MODIFY": when(3)}])
    write(tmp_path, "activities", [{"ID": str(700 + i), "OWNER_TYPE_ID": "2", "OWNER_ID": str(i),
                                    "SUBJECT": "Звонок", "LAST_UPDATED": when(5 + i)} for i in range(5)])
    write(tmp_path, "deal_stages", [
        {"ID": "1", "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "NEW", "NAME": "Новая", "SORT": "10", "SEMANTICS": None},
        {"ID": "2", "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "WON", "NAME": "Сделка успешна", "SORT": "60",
         "SEMANTICS": "S"},
        {"ID": "3", "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": "LOSE", "NAME": "Провалена", "SORT": "70",
         "SEMANTICS": "F"},
        {"ID": "4", "ENTITY_ID": "SOURCE", "STATUS_ID": "WEB", "NAME": "Сайт", "SORT": "10"},
    ])
    write(tmp_path, "deal_userfields", [{"ID": "41", "ENTITY_ID": "CRM_DEAL", "FIELD_NAME": "UF_CRM_PURPOSE",
                                         "USER_TYPE_ID": "string"}])
    return tmp_path


def config(url: str, **extra) -> SourceConfig:
    base = {"bucket_size": 1000, "drain_rate": 1000, "backoff_base": 0.01, "lookback_days": 2}
    return SourceConfig("bitrix24_default", "http", host=f"{url}/rest/1/{SECRET}", extra={**base, **extra})


def app_for(root: Path, **kw):
    return emulator.create_app(root, **{"bucket_size": 10_000, "drain_rate": 1000, **kw})


def client_for(url: str, **kw) -> bitrix24.Bitrix24Client:
    return bitrix24.Bitrix24Client(f"{url}/rest/1/{SECRET}", **{"capacity": 1000, "drain_rate": 1000, **kw})


WINDOW = Window.for_day(dt.date(2026, 9, 1), full=True)
NEXT_WINDOW = Window.for_day(dt.date(2026, 9, 2))


def deals_in(wh) -> dict[int, tuple]:
    rows = wh.execute("select id, record->>'TITLE', is_deleted from raw_bitrix24.deals order by id").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def checksum(wh) -> dict[str, str]:
    return {t: wh.execute(
        f"select md5(coalesce(string_agg(row(portal, id, updated_at, is_deleted, record)::text, '|' "
        f"order by portal, id), '')) from raw_bitrix24.{t}").fetchone()[0] for t in TABLES}


def test_webhook_url_and_units():
    assert bitrix24.webhook_url(SourceConfig("b", host="https://p.bitrix24.ru/rest/1/abc")) == \
        "https://p.bitrix24.ru/rest/1/abc"
    # URI form: the path arrives as schema; the secret may sit in the password
    assert bitrix24.webhook_url(SourceConfig("b", host="p.bitrix24.ru", schema="rest/7/xyz")) == \
        "https://p.bitrix24.ru/rest/7/xyz"
    assert bitrix24.webhook_url(SourceConfig("b", host="p.bitrix24.ru", login="3", password="s")) == \
        "https://p.bitrix24.ru/rest/3/s"
    assert bitrix24.webhook_url(SourceConfig("b", host="http://h:1/rest/5", password="s")) == "http://h:1/rest/5/s"
    with pytest.raises(ValueError, match="no secret"):
        bitrix24.webhook_url(SourceConfig("b", host="p.bitrix24.ru"))
    cfg = SourceConfig("b", host="x", password="s", extra={"portals": ["cafe", "shop.example.ru"]})
    assert bitrix24.units(cfg) == ["cafe", "shop.example.ru"]
    assert bitrix24.webhook_url(cfg, "cafe") == "https://cafe.bitrix24.ru/rest/1/s"
    assert bitrix24.units(SourceConfig("b", host="x")) == ["default"]


def test_emulator_filters_select_and_batch_commands(data):
    app = app_for(data)
    with running(app) as url, client_for(url) as client:
        answer = client.call("crm.deal.list", {"filter": {">=DATE_MODIFY": when(28, 8), "=STAGE_ID": "LOSE"},
                                               "select": ["ID", "STAGE_ID"], "order": {"ID": "DESC"}})
        stages = client.call("crm.status.list", {"filter": {"ENTITY_ID": "DEAL_STAGE"}})
        custom = client.call("crm.deal.list", {"filter": {"ID": 3}, "select": ["UF_*"]})
        # a batch command line is a PHP-style query string, parsed back by the portal
        line = command("crm.deal.list", {"filter": {">ID": 5, "@ID": [6, 7]}, "select": ["*", "UF_*"], "start": -1})
        assert emulator.parse_php_query(line.split("?", 1)[1]) == {
            "filter": {">ID": "5", "@ID": ["6", "7"]}, "select": ["*", "UF_*"], "start": "-1"}
        both = client.batch({"a": ("crm.deal.list", {"filter": {"@ID": [6, 7]}, "start": -1}),
                             "b": ("crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})})
    # deals modified on the 28th from 08:00 and lost: i ≡ 27 (mod 28), i ≡ 0 (mod 3) → 27 and 111
    assert [r["ID"] for r in answer["result"]] == ["111", "27"]
    assert set(answer["result"][0]) == {"ID", "STAGE_ID"} and answer["total"] == 2 and "next" not in answer
    assert {r["STATUS_ID"]: r["SEMANTICS"] for r in stages["result"]} == {"NEW": None, "WON": "S", "LOSE": "F"}
    assert set(custom["result"][0]) == {"ID", "UF_CRM_PURPOSE", "UF_CRM_YM_CLIENT_ID"}
    assert [r["ID"] for r in both["a"]["result"]] == ["6", "7"] and both["b"]["result"][0]["STATUS_ID"] == "WEB"
    assert "total" in both["b"] and "total" not in both["a"]  # start=-1 skips the count


def test_offset_and_cursor_paths_give_the_full_set(data):
    app = app_for(data)
    expected = set(range(1, 121))
    with running(app) as url, client_for(url, use_batch=False) as plain, client_for(url) as batched:
        offset = [p for p in plain.offset_pages("crm.deal.list", {"order": {"ID": "ASC"}})]
        offset_batched = [p for p in batched.offset_pages("crm.deal.list", {"order": {"ID": "ASC"}})]
        cursor = [p for p in plain.cursor_pages("crm.deal.list", {"select": ["*", "UF_*"]})]
        ids_batched = batched.list_ids("crm.deal.list")
        ids_plain = plain.list_ids("crm.deal.list")
    for pages in (offset, offset_batched, cursor):
        got = [int(r["ID"]) for p in pages for r in p.rows]
        assert sorted(got) == sorted(expected) and len(got) == 120  # every deal exactly once
    assert [len(p.rows) for p in cursor] == [50, 50, 20]
    assert ids_batched == ids_plain == expected
    # round trips: plain start/next 3, cursor 3, ID set 3; batched start/next 1 + 1, ID set one chained batch
    assert (plain.requests_made, batched.requests_made) == (3 + 3 + 3, 2 + 1)
    calls = [c for c in app.state.b24.calls if c["method"] == "crm.deal.list"]
    assert any(c["params"].get("start") == -1 and c["params"]["filter"] == {">ID": 50} for c in calls)


def test_full_load_lands_every_list(data, wh):
    write(data, "deals", [*deals(), deal(121, when(20), UF_CRM_NEW_FIELD="x")])
    app = app_for(data)
    with running(app) as url:
        results = bitrix24.extract_load(config(url), "default", WINDOW, wh)
    counts = {t: wh.execute(f"select count(*) from raw_bitrix24.{t}").fetchone()[0] for t in TABLES}
    assert counts == {"deals": 121, "contacts": 7, "companies": 1, "activities": 5, "deal_stages": 3,
                      "deal_userfields": 1}
    won = wh.execute("select status_id from raw_bitrix24.deal_stages where record->>'SEMANTICS' = 'S'").fetchall()
    assert won == [("WON",)]
    rec, updated = wh.execute("select record, updated_at from raw_bitrix24.deals where id = 1").fetchone()
    assert rec["UF_CRM_PURPOSE"] == "Для нашей кофейни" and rec["OPPORTUNITY"] == "1001.00"
    assert updated == dt.datetime(2026, 8, 2, 6, tzinfo=dt.UTC)  # 09:00 +03:00
    detail = next(wh.execute("select detail from raw_meta.load_batches where batch_id = %s", (r.batch_id,))
                  .fetchone()[0] for r in results if r.entity == "deals")
    assert detail["userfields_unknown"] == ["UF_CRM_NEW_FIELD", "UF_CRM_YM_CLIENT_ID"]
    # both reference lists travelled in one batch call
    assert Counter(c["method"] for c in app.state.b24.calls)["batch"] >= 1
    assert not any(c["method"] in ("crm.status.list", "crm.deal.userfield.list") for c in app.state.b24.calls)
    assert get_state(wh, "bitrix24", "default", "hwm:deals") == WINDOW.end.astimezone(dt.UTC).isoformat()


def test_incremental_lookback_and_deleted_deal(data, wh):
    with running(app_for(data)) as url:
        bitrix24.extract_load(config(url), "default", WINDOW, wh)
        wh.commit()
        # deal 7 deleted in the portal; deal 8 changed with a DATE_MODIFY inside the lookback
        rows = [d for d in deals() if d["ID"] != "7"]
        rows[6] = deal(8, when(31, 20), TITLE="поздняя правка")
        write(data, "deals", rows)
        results = bitrix24.extract_load(config(url, paging="offset"), "default", NEXT_WINDOW, wh)
        got = deals_in(wh)
        assert got[8][0] == "поздняя правка"
        assert got[7][1] is True and sum(1 for _, d in got.values() if d) == 1
        batch = next(r for r in results if r.entity == "deals")
        assert batch.rows_read == 1  # only the changed deal was pulled, not the history
        # the flag is stamped with the scan's batch, so incremental models downstream see it
        assert _stamp(wh, 7) == (batch.batch_id, True)
        wh.commit()
        # deal 7 comes back (restored from the recycle bin)
        write(data, "deals", deals())
        again = bitrix24.extract_load(config(url, paging="cursor"), "default", NEXT_WINDOW, wh)
    assert deals_in(wh)[7][1] is False
    assert _stamp(wh, 7) == (next(r for r in again if r.entity == "deals").batch_id, True)


def _stamp(wh, deal_id: int) -> tuple[str, bool]:
    """(the deal row's _batch_id, whether its _loaded_at is that batch's ledger finished_at)."""
    row = wh.execute("select d._batch_id::text, d._loaded_at = b.finished_at from raw_bitrix24.deals as d "
                     "join raw_meta.load_batches as b on b.batch_id = d._batch_id where d.id = %s",
                     (deal_id,)).fetchone()
    return row[0], row[1]


def test_history_from_start_date(data, wh):
    with running(app_for(data)) as url:
        bitrix24.extract_load(config(url, entities=["deals"], start_date="2026-08-27"), "default", WINDOW, wh)
    # deals modified on 27 or 28 August: i mod 28 in (26, 27)
    assert set(deals_in(wh)) == {i for i in range(1, 121) if i % 28 in (26, 27)}


def test_malformed_rows_are_quarantined_and_balance(data, wh):
    write(data, "deals", [deal(1, when(2)), "garbage", {"TITLE": "no id", "DATE_MODIFY": when(2)},
                          deal(5, "вчера"), {"ID": "x9", "DATE_MODIFY": when(2)}, deal(6, when(3))])
    with running(app_for(data)) as url:
        bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)
    assert set(deals_in(wh)) == {1, 6}
    reasons = sorted(r[0] for r in wh.execute("select reason from raw_meta.quarantine where entity = 'deals'"))
    assert reasons == ["ID is not an integer: 'x9'", "not a JSON object (str)", "unparseable DATE_MODIFY: 'вчера'"]
    # the row without an ID cannot pass an ID filter, so the cursor never sees it: 5 rows read
    assert wh.execute("select rows_read, rows_loaded, rows_quarantined from raw_meta.load_batches "
                      "where entity = 'deals'").fetchall() == [(5, 2, 3)]


def test_same_window_twice_gives_identical_tables(data, wh):
    with running(app_for(data)) as url:
        bitrix24.extract_load(config(url), "default", WINDOW, wh)
        first = checksum(wh)
        wh.commit()
        bitrix24.extract_load(config(url), "default", WINDOW, wh)  # a retry of the full run
        second = checksum(wh)
        wh.commit()
        bitrix24.extract_load(config(url), "default", Window.for_day(dt.date(2026, 9, 1)), wh)
        third = checksum(wh)
    assert first == second == third


@pytest.mark.parametrize("second", [WINDOW, NEXT_WINDOW], ids=["retry", "next-day"])
def test_history_resumes_after_a_crash(data, wh, second):
    app = app_for(data)
    # two pages per batch: the first batch (deals 1-100) is committed in two chunks of 50 rows, the
    # second batch fails with an error that is not retried
    app.state.faults.add(path=r"/batch", status=400, body={"error": "BOOM", "error_description": "x"},
                         after=1, times=1)
    with running(app) as url:
        cfg = config(url, entities=["deals"], history_batch_rows=50, chain_pages=2)
        with pytest.raises(bitrix24.Bitrix24Error, match="BOOM"):
            bitrix24.extract_load(cfg, "default", WINDOW, wh)
        assert len(deals_in(wh)) == 100
        wh.commit()
        before = len(app.state.b24.calls)
        bitrix24.extract_load(cfg, "default", second, wh)
    resumed = [c["params"]["cmd"] for c in app.state.b24.calls[before:] if c["method"] == "batch"]
    first = emulator.parse_php_query(resumed[0]["p0"].split("?", 1)[1])
    assert first["filter"] == {">ID": "100"}
    assert len(deals_in(wh)) == 120
    statuses = [r[0] for r in wh.execute("select status from raw_meta.load_batches order by started_at")]
    assert statuses == ["loaded", "loaded", "failed", "loaded"]


def test_query_limit_exceeded_is_backed_off_and_retried(data, wh):
    app = app_for(data, bucket_size=4, drain_rate=5)
    with running(app) as url:
        bitrix24.extract_load(config(url, entities=["deals"], use_batch=False, backoff_base=0.2), "default",
                              WINDOW, wh)
    statuses = Counter(r["status"] for r in app.state.b24.requests)
    assert statuses[503] >= 1  # the client-side bucket was set far above the portal's
    assert len(deals_in(wh)) == 120


def test_client_side_bucket_avoids_query_limit(data, wh):
    app = app_for(data, bucket_size=5, drain_rate=5)
    with running(app) as url:
        bitrix24.extract_load(config(url, entities=["deals"], use_batch=False, bucket_size=5, drain_rate=5),
                              "default", WINDOW, wh)
    assert len(app.state.b24.requests) > 5  # more calls than the bucket holds at once
    assert {r["status"] for r in app.state.b24.requests} == {200}
    assert len(deals_in(wh)) == 120


def test_method_time_limit_429_is_backed_off(data, wh):
    app = app_for(data)
    app.state.faults.add(path=r"/batch", status=429, times=2,
                         body={"error": "OPERATION_TIME_LIMIT", "error_description": "Method is blocked"})
    with running(app) as url:
        bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)
    assert [r["status"] for r in app.state.b24.requests][:3] == [429, 429, 200]
    assert len(deals_in(wh)) == 120


def test_wrong_secret_fails_clearly(data, wh):
    app = app_for(data, secret="other")
    with running(app) as url:
        with pytest.raises(bitrix24.Bitrix24AuthError, match="INVALID_CREDENTIALS"):
            bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)
    app = app_for(data)
    app.state.b24.expire()
    with running(app) as url:
        with pytest.raises(bitrix24.Bitrix24AuthError, match="expired_token"):
            bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)


def test_leaky_bucket_mirror_keeps_below_the_portal_bucket():
    """Deterministic: a fake clock; the client never fills the portal's bucket of 50 at 2/s."""
    now = [0.0]
    bucket = bitrix24.LeakyBucket(50, 2.0, headroom=2, clock=lambda: now[0],
                                  sleep=lambda s: now.__setitem__(0, now[0] + s))
    portal = emulator.B24State(SECRET, 50, 2.0, last=0.0)
    admitted = []
    for _ in range(120):
        bucket.acquire()
        # the portal sees the request at the same instant
        portal.level = max(0.0, portal.level - (now[0] - portal.last) * portal.drain_rate)
        portal.last = now[0]
        admitted.append(portal.level + 1 <= portal.bucket_size)
        portal.level += 1
    assert all(admitted)
    assert now[0] == pytest.approx((120 - 48) / 2.0)  # the first 48 go at once, then 2 a second


def test_reset_and_truncated_answers_are_retried(data, wh):
    app = app_for(data)
    app.state.faults.add(path=r"/batch", reset=True, times=1)
    app.state.faults.add(path=r"/batch", truncate=20, times=1)  # the retry comes back cut short
    with running(app) as url:
        bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)
    assert len(app.state.faults.log) == 2
    assert len(deals_in(wh)) == 120
    assert wh.execute("select count(*) from raw_bitrix24.deals where is_deleted").fetchone()[0] == 0


def test_a_slow_batch_is_waited_for_longer_on_each_retry(data, wh):
    """A read time-out means the portal is still working: the retry waits twice as long, so a batch
    that takes 1.5 s passes on the second attempt with a 1 s time-out (the same 1 s again and again
    would time out on every attempt and pile abandoned requests onto the portal)."""
    app = app_for(data)
    app.state.faults.add(path=r"/batch", delay=1.5, times=20)
    with running(app) as url:
        bitrix24.extract_load(config(url, entities=["deals"], timeout=1, max_retries=2), "default", WINDOW, wh)
    assert len(deals_in(wh)) == 120
    statuses = [e["status"] for e in app.state.b24.requests if e["method"] == "batch"]
    assert None in statuses  # an answer the client stopped waiting for (max_retries=2: 1 s three times fails)
    assert statuses.count(200) >= 2


def test_a_batch_timeout_can_be_set_apart(data):
    app = app_for(data)
    app.state.faults.add(path=r"/batch", delay=1.2, times=1)
    with running(app) as url:
        client = client_for(url, timeout=1, batch_timeout=3, max_retries=0)
        assert client.batch({"d": ("crm.deal.list", {"start": 0})})["d"]["total"] == 120
        with pytest.raises(bitrix24.Bitrix24Error, match="ReadTimeout"):
            app.state.faults.add(path=r"/crm.deal.list", delay=1.2, times=1)
            client.call("crm.deal.list", {"start": 0})


def test_an_implausible_mass_deletion_is_refused_and_reported(data, wh):
    with running(app_for(data)) as url:
        bitrix24.extract_load(config(url, entities=["deals"]), "default", WINDOW, wh)
        wh.commit()
        write(data, "deals", deals(30))  # 90 of 120 deals "gone": more likely a broken listing
        results = bitrix24.extract_load(config(url, entities=["deals"]), "default", NEXT_WINDOW, wh)
        assert sum(1 for _, d in deals_in(wh).values() if d) == 0
        detail = wh.execute("select detail from raw_meta.load_batches where batch_id = %s",
                            (results[0].batch_id,)).fetchone()[0]
        assert detail["deletion_guard"] == {"would_flag": 90, "live": 120}
        wh.commit()
        # an operator who confirms the mass deletion raises the share
        bitrix24.extract_load(config(url, entities=["deals"], max_deleted_share=1), "default", NEXT_WINDOW, wh)
    assert sum(1 for _, d in deals_in(wh).values() if d) == 90


# -- chained batches: $result[...] references and the 50-pages-per-request ID walk -------------------
def batch_of(url: str, cmd: dict, halt: int = 0) -> dict:
    with client_for(url) as client:
        return client.call("batch", {"halt": halt, "cmd": cmd})["result"]


def ids_of(rows) -> list[int]:
    return [int(r["ID"]) for r in rows]


def test_batch_substitutes_result_references_like_the_portal(data):
    write(data, "deals", deals(60))
    page = "crm.deal.list?order[ID]=ASC&start=-1&select[]=ID&filter[>ID]="
    with running(app_for(data)) as url:
        got = batch_of(url, {
            "p0": page + "0",
            "p1": page + "$result[p0][49][ID]",    # the last ID of a full page: deals 51-60
            "p2": page + "$result[p1][49][ID]",    # p1 has 10 rows: the path stops at $result[p1]
            "p3": page + "$result[nope][0][ID]",   # no such command: stops at $result itself
            "p4": page + "$result[p0][2][ID]9",    # the macro runs to the next white space
            "p5": "crm.deal.list?start=-1&select[]=TITLE&filter[ID]=$result[p0][0][ID]",
        })
        halted = batch_of(url, {"a": page + "0", "b": "crm.no.such?x=1", "c": page + "$result[a][49][ID]"},
                          halt=1)
        carried_on = batch_of(url, {"a": page + "0", "b": "crm.no.such?x=1", "c": page + "$result[a][49][ID]"})
    res = got["result"]
    assert ids_of(res["p0"]) == list(range(1, 51))
    assert ids_of(res["p1"]) == list(range(51, 61))
    # no error for a reference to a row that is not there: the rows it reached stand in for the value,
    # and an array compared with >ID counts as 1 — the walk quietly starts again (a client must stop
    # at the short page itself)
    assert ids_of(res["p2"]) == list(range(2, 52))
    assert ids_of(res["p3"]) == list(range(2, 52))
    assert ids_of(res["p4"]) == list(range(4, 54))  # "$result[p0][2][ID]9" as a whole → 3
    assert res["p5"] == [{"ID": "1", "TITLE": "Зерно HoReCa 5 кг #1"}]
    assert got["result_error"] == [] and set(got["result_time"]) == set(res)
    # halt=1 stops at the failed command; halt=0 runs the rest
    assert list(halted["result"]) == ["a"] and list(halted["result_error"]) == ["b"]
    assert list(carried_on["result"]) == ["a", "c"] and ids_of(carried_on["result"]["c"]) == list(range(51, 61))


def test_emulator_limit_can_be_lifted(data):
    for lifted in ({"bucket_size": 1, "drain_rate": 0}, {"bucket_size": 1, "drain_rate": None},
                   {"bucket_size": None, "drain_rate": 2}):
        app = emulator.create_app(data, **lifted)
        with running(app) as url, client_for(url) as client:
            for _ in range(5):
                client.call("crm.company.list", {})
        assert [r["status"] for r in app.state.b24.requests] == [200] * 5, lifted
    app = emulator.create_app(data, bucket_size=1, drain_rate=0.001)
    with running(app) as url, client_for(url, max_retries=0) as client:
        client.call("crm.company.list", {})
        with pytest.raises(bitrix24.Bitrix24Error, match="QUERY_LIMIT_EXCEEDED"):
            client.call("crm.company.list", {})


def walk_data(kind: str) -> list:
    if kind == "short-last-page":
        return deals(120)
    if kind == "full-last-page":
        return deals(100)
    if kind == "empty":
        return []
    if kind == "id-gap":
        return [deal(i, when(3)) for i in [*range(1, 71), *range(5000, 5081)]]
    if kind == "malformed":  # rows the ID filter cannot place come back on pages as they are
        return ["garbage", *deals(75), {"ID": "x9", "DATE_MODIFY": when(2)}, {"TITLE": "no id"}]
    raise ValueError(kind)


@pytest.mark.parametrize("chain", [50, 2, 3])
@pytest.mark.parametrize("kind", ["short-last-page", "full-last-page", "empty", "id-gap", "malformed"])
def test_chained_walk_returns_the_pages_of_the_page_by_page_walk(data, kind, chain):
    write(data, "deals", walk_data(kind))
    app = app_for(data)
    params = {"select": ["*", "UF_*"]}
    with running(app) as url, client_for(url, use_batch=False) as plain, \
            client_for(url, chain_pages=chain) as chained:
        old = [(p.part, p.rows) for p in plain.cursor_pages("crm.deal.list", params)]
        new = [(p.part, p.rows) for p in chained.id_walk("crm.deal.list", params)]
        ids_old = plain.list_ids("crm.deal.list")
        ids_new = chained.list_ids("crm.deal.list")
    assert new == old  # same pages, same rows, same order
    assert ids_new == ids_old
    pages = len(old)
    assert plain.requests_made == 2 * pages
    assert chained.requests_made <= 2 * -(-pages // chain) + (2 if kind == "malformed" else 0)


def test_chained_walk_survives_query_limit_exceeded_mid_walk(data):
    write(data, "deals", deals(260))
    app = app_for(data)
    app.state.faults.add(path=r"/batch", status=503, after=1, times=2,
                         body={"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"})
    with running(app) as url, client_for(url, use_batch=False) as plain, \
            client_for(url, chain_pages=2, backoff_base=0.01) as chained:
        new = [(p.part, p.rows) for p in chained.id_walk("crm.deal.list", {})]
        old = [(p.part, p.rows) for p in plain.cursor_pages("crm.deal.list", {})]
    assert new == old and sum(len(rows) for _, rows in new) == 260
    assert [r["status"] for r in app.state.b24.requests if r["method"] == "batch"] == [200, 503, 503, 200, 200]


def test_chained_walk_needs_fifty_times_fewer_requests(data):
    write(data, "deals", deals(5000))
    app = app_for(data)
    with running(app) as url, client_for(url, use_batch=False) as plain, client_for(url) as chained:
        old = sum(len(p.rows) for p in plain.cursor_pages("crm.deal.list", {"select": ["ID", "TITLE"]}))
        old_requests = len(app.state.b24.requests)
        new = sum(len(p.rows) for p in chained.id_walk("crm.deal.list", {"select": ["ID", "TITLE"]}))
        new_requests = len(app.state.b24.requests) - old_requests
        ids = chained.list_ids("crm.deal.list")
        id_requests = len(app.state.b24.requests) - old_requests - new_requests
    assert old == new == len(ids) == 5000
    # 100 full pages and the empty one that ends the walk: 101 requests, or 3 batches of up to 50 pages
    assert (old_requests, new_requests, id_requests) == (101, 3, 3)


def portal_checksum(wh, portal: str) -> dict[str, str]:
    return {t: wh.execute(
        f"select md5(coalesce(string_agg(row(id, updated_at, is_deleted, record)::text, '|' order by id), '')) "
        f"from raw_bitrix24.{t} where portal = %s", (portal,)).fetchone()[0] for t in TABLES}


def test_chained_load_lands_what_the_page_by_page_load_lands(data, wh):
    write(data, "deals", [*walk_data("malformed"), *(deal(i, when(4)) for i in range(300, 420))])
    write(data, "companies", [])  # an empty list
    app = app_for(data)
    with running(app) as url:
        portals = {"old": f"{url}/rest/1/{SECRET}", "new": f"{url}/rest/1/{SECRET}"}
        old_cfg = config(url, portals=portals, use_batch=False)
        new_cfg = config(url, portals=portals, chain_pages=2)  # several batches per list
        n0 = len(app.state.b24.requests)
        bitrix24.extract_load(old_cfg, "old", WINDOW, wh)
        n1 = len(app.state.b24.requests)
        bitrix24.extract_load(new_cfg, "new", WINDOW, wh)
        n2 = len(app.state.b24.requests)
        assert portal_checksum(wh, "new") == portal_checksum(wh, "old")
        assert n2 - n1 < n1 - n0  # two pages a batch here; the 50x is measured with 5,000 rows above
        wh.commit()
        # the next day: deal 7 deleted in the portal, deal 8 changed
        rows = [r for r in walk_data("malformed") if not (isinstance(r, dict) and r.get("ID") == "7")]
        rows = [deal(8, when(31, 20), TITLE="поздняя правка") if isinstance(r, dict) and r.get("ID") == "8"
                else r for r in rows]
        write(data, "deals", [*rows, *(deal(i, when(4)) for i in range(300, 420))])
        bitrix24.extract_load(old_cfg, "old", NEXT_WINDOW, wh)
        bitrix24.extract_load(new_cfg, "new", NEXT_WINDOW, wh)
    assert portal_checksum(wh, "new") == portal_checksum(wh, "old")
    flagged = wh.execute("select portal, id from raw_bitrix24.deals where is_deleted order by 1, 2").fetchall()
    assert flagged == [("new", 7), ("old", 7)]
    # every record read is loaded or quarantined with a reason, in both walks
    ledger = wh.execute("select unit, sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
                        "from raw_meta.load_batches where source = 'bitrix24' group by unit order by unit").fetchall()
    assert ledger[0][1:] == ledger[1][1:] and all(read == loaded + bad for _, read, loaded, bad in ledger)


def test_throttle_settings_from_the_connection():
    def client_settings(**extra):
        return bitrix24.loader.Settings.from_config(SourceConfig("b", host="h", extra=extra)).client

    assert (client_settings()["drain_rate"], client_settings()["capacity"]) == (2, 50)
    assert client_settings(requests_per_second=5, burst=250) | {} == client_settings(
        requests_per_second="5", burst="250", drain_rate=1, bucket_size=10)  # new names win over old ones
    assert client_settings(drain_rate=1, bucket_size=10)["drain_rate"] == 1  # old names still read
    off = client_settings(requests_per_second=0, burst=0)  # what the bench's lifted connection sets
    assert (off["drain_rate"], off["capacity"]) == (0, 0)

    def no_sleep(seconds):
        raise AssertionError(f"the throttle slept {seconds}s although it is off")

    bucket = bitrix24.LeakyBucket(off["capacity"], off["drain_rate"], sleep=no_sleep)
    for _ in range(1000):
        bucket.acquire()


# -- the deletion scan streams the listed IDs into PostgreSQL --------------------------------------
def ids_deleted(wh) -> set[int]:
    return {r[0] for r in wh.execute("select id from raw_bitrix24.deals where is_deleted").fetchall()}


def detail_of(wh, results, entity: str = "deals") -> dict:
    batch = [r for r in results if r.entity == entity][-1]
    return wh.execute("select detail from raw_meta.load_batches where batch_id = %s", (batch.batch_id,)).fetchone()[0]


def test_deletion_scan_flags_restores_and_guards_with_ids_over_many_pages(data, wh, monkeypatch):
    """IDs arrive over many pages and batches (2 pages a batch) and are staged in chunks of 7: the
    flags, restores, the guard and ``ids_listed`` are what the whole ID set gave — and the set of
    every ID is never built (its memory grew with the portal's history)."""
    def every_id_at_once(*args, **kwargs):
        raise AssertionError("the deletion scan must not hold every ID of a list")

    monkeypatch.setattr(bitrix24.Bitrix24Client, "list_ids", every_id_at_once)
    monkeypatch.setattr(bitrix24.loader.ListedIds, "CHUNK", 7)
    too_big = {"ID": "99999999999999999999", "DATE_MODIFY": when(3)}  # listed, quarantined, never stored
    write(data, "deals", [*deals(260), too_big])
    with running(app_for(data)) as url:
        cfg = config(url, entities=["deals"], chain_pages=2)
        first = detail_of(wh, bitrix24.extract_load(cfg, "default", WINDOW, wh))
        assert (first["ids_listed"], first["flagged_deleted"], first["restored"]) == (261, 0, 0)
        wh.commit()
        # deals on the first, a middle and the last page deleted in the portal
        write(data, "deals", [d for d in deals(260) if int(d["ID"]) not in (7, 130, 260)])
        second = detail_of(wh, bitrix24.extract_load(cfg, "default", NEXT_WINDOW, wh))
        assert (second["ids_listed"], second["flagged_deleted"], second["restored"]) == (257, 3, 0)
        assert ids_deleted(wh) == {7, 130, 260}
        wh.commit()
        # 130 restored from the recycle bin
        write(data, "deals", [d for d in deals(260) if int(d["ID"]) not in (7, 260)])
        third = detail_of(wh, bitrix24.extract_load(cfg, "default", NEXT_WINDOW, wh))
        assert (third["ids_listed"], third["flagged_deleted"], third["restored"]) == (258, 0, 1)
        assert ids_deleted(wh) == {7, 260}
        wh.commit()
        # a listing that lost most of its pages: refused, nothing flagged, counts reported
        write(data, "deals", deals(100))
        guarded = detail_of(wh, bitrix24.extract_load(cfg, "default", NEXT_WINDOW, wh))
        assert guarded["ids_listed"] == 100 and "flagged_deleted" not in guarded
        assert guarded["deletion_guard"] == {"would_flag": 159, "live": 258}  # 101…259
        assert ids_deleted(wh) == {7, 260}
    assert wh.execute("select to_regclass('pg_temp.b24_listed_ids')").fetchone()[0] is None  # dropped


def test_listed_ids_count_distinct_ids_and_keep_out_of_range_ones_apart(wh):
    with wh.transaction(), bitrix24.loader.ListedIds(wh, chunk=3) as listed:
        listed.add([1, 2, 3, 3])
        listed.add([2 ** 70, 4, -(2 ** 70)])
        listed.add([2 ** 70, 1])
        listed.done()
        assert listed.count() == 6  # 1, 2, 3, 4 and the two that no bigint holds
        assert wh.execute("select array_agg(id order by id) from pg_temp.b24_listed_ids").fetchone()[0] == \
            [1, 1, 2, 3, 3, 4]
    assert wh.execute("select to_regclass('pg_temp.b24_listed_ids')").fetchone()[0] is None


def test_answers_are_freed_without_waiting_for_the_cyclic_gc(data):
    """httpx 0.28 ties each response to its stream in a reference cycle; the client breaks it, so a
    read answer (a history batch: megabytes) goes as soon as it is dropped, not at the next full
    collection — the loader's memory grew with the history it read."""
    import gc

    import httpx

    write(data, "deals", deals(260))
    with running(app_for(data)) as url, client_for(url, chain_pages=2) as client:
        gc.collect()
        gc.disable()
        try:
            rows = sum(len(p.rows) for p in client.id_walk("crm.deal.list", {"select": ["*", "UF_*"]}))
            client.call("crm.deal.list", {"start": 0})
            alive = sum(isinstance(o, httpx.Response) for o in gc.get_objects())
        finally:
            gc.enable()
    assert rows == 260 and client.requests_made == 4
    assert alive == 0
