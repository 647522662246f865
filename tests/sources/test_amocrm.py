"""amoCRM v4 client and loader against the emulator and a real PostgreSQL database."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators import amocrm as emulator
from customer_warehouse.emulators.server import running
from customer_warehouse.loading import get_state
from customer_warehouse.sources import Window, amocrm

MSK = dt.timezone(dt.timedelta(hours=3))
TABLES = ("leads", "contacts", "companies", "tasks", "users", "pipelines", "loss_reasons", "custom_fields",
          "notes", "events")


def ts(month: int, day: int, hour: int = 12) -> int:
    return int(dt.datetime(2026, month, day, hour, tzinfo=MSK).timestamp())


def lead(i: int, updated: int, **kw) -> dict:
    return {"id": i, "name": f"Заказ: Зерно спешелти 250 г #{i}", "price": 1000 * i, "status_id": 142,
            "pipeline_id": 1, "created_at": updated - 3600, "updated_at": updated,
            "custom_fields_values": [{"field_id": 501, "field_name": "Цель покупки", "field_type": "textarea",
                                      "values": [{"value": "хобби"}]}],
            "_embedded": {"tags": [], "contacts": [{"id": 100 + i}]}, **kw}


def write(root: Path, name: str, items: list) -> None:
    folder = root / "amocrm"
    folder.mkdir(parents=True, exist_ok=True)
    lines = [i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items]
    (folder / f"{name}.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")


@pytest.fixture()
def data(tmp_path) -> Path:
    write(tmp_path, "leads", [lead(1, ts(6, 10)), lead(2, ts(7, 5)), lead(3, ts(8, 20)), lead(4, ts(8, 30))])
    write(tmp_path, "deleted_leads", [])
    write(tmp_path, "contacts", [{"id": 101, "name": "Анна", "updated_at": ts(6, 11),
                                  "custom_fields_values": [{"field_id": 777, "values": [{"value": "a@x.ru"}]}]}])
    write(tmp_path, "companies", [{"id": 201, "name": "Кофейня", "updated_at": ts(7, 1)}])
    write(tmp_path, "tasks", [{"id": 301, "text": "Позвонить", "updated_at": ts(8, 1), "entity_id": 1}])
    write(tmp_path, "notes_leads", [{"id": 401, "entity_id": 1, "note_type": "common", "updated_at": ts(8, 2)}])
    write(tmp_path, "notes_contacts", [{"id": 401, "entity_id": 101, "note_type": "call_in",
                                        "updated_at": ts(8, 3)}])
    write(tmp_path, "events", [{"id": "01evt", "type": "lead_status_changed", "entity_id": 1,
                                "entity_type": "lead", "created_at": ts(6, 10)}])
    write(tmp_path, "users", [{"id": 9, "name": "Менеджер", "email": "m@x.ru"}])
    write(tmp_path, "pipelines", [{"id": 1, "name": "Продажи", "_embedded": {"statuses": [
        {"id": 10, "name": "Новый лид"}, {"id": 142, "name": "Успешно реализовано"}]}}])
    write(tmp_path, "loss_reasons", [{"id": 5, "name": "Дорого", "created_at": ts(6, 1), "updated_at": ts(6, 1)}])
    write(tmp_path, "custom_fields_leads", [{"id": 501, "name": "Цель покупки", "type": "textarea"}])
    write(tmp_path, "custom_fields_contacts", [{"id": 601, "name": "EMAIL", "type": "multitext"}])
    return tmp_path


def config(url: str, **extra) -> SourceConfig:
    base = {"rate_limit": 1000, "backoff_base": 0.01, "start_date": "2026-06-01", "lookback_days": 2}
    return SourceConfig("amocrm_default", "amocrm", host=url, password="demo-token", extra={**base, **extra})


def app_for(root: Path, **kw):
    return emulator.create_app(root, **{"rate_limit": 1000, **kw})


WINDOW = Window.for_day(dt.date(2026, 9, 1), full=True)
NEXT_WINDOW = Window.for_day(dt.date(2026, 9, 2))


def leads_in(wh) -> dict[int, tuple]:
    rows = wh.execute("select id, record->>'name', is_deleted from raw_amocrm.leads order by id").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def checksum(wh) -> dict[str, str]:
    out = {}
    for t in TABLES:
        out[t] = wh.execute(
            f"select md5(coalesce(string_agg(row(account, id, updated_at, record)::text, '|' "
            f"order by account, id::text, record::text), '')) from raw_amocrm.{t}").fetchone()[0]
    out["deleted"] = wh.execute("select string_agg(id::text, ',' order by id) from raw_amocrm.leads "
                                "where is_deleted").fetchone()[0]
    return out


def test_units_and_account_urls():
    assert amocrm.units(SourceConfig("a", host="acme.amocrm.ru")) == ["default"]
    cfg = SourceConfig("a", host="x", password="t", extra={"accounts": {"shop": "https://shop.kommo.com",
                                                                        "b2b": {"base_url": "http://h", "token": "k"}}})
    assert amocrm.units(cfg) == ["shop", "b2b"]
    from customer_warehouse.sources.amocrm.loader import _account

    assert _account(cfg, "shop") == ("https://shop.kommo.com", "t")
    assert _account(cfg, "b2b") == ("http://h", "k")
    assert _account(SourceConfig("a", host="x", extra={"accounts": ["acme"]}), "acme")[0] == "https://acme.amocrm.ru"


def test_full_load_lands_every_list_and_pages_to_204(data, wh):
    app = app_for(data)
    with running(app) as url:
        results = amocrm.extract_load(config(url, page_limit=2), "default", WINDOW, wh)
    counts = {t: wh.execute(f"select count(*) from raw_amocrm.{t}").fetchone()[0] for t in TABLES}
    assert counts == {"leads": 4, "contacts": 1, "companies": 1, "tasks": 1, "users": 1, "pipelines": 1,
                      "loss_reasons": 1, "custom_fields": 2, "notes": 2, "events": 1}
    # the record is kept whole, nested statuses included
    statuses = wh.execute("select record->'_embedded'->'statuses' from raw_amocrm.pipelines").fetchone()[0]
    assert [s["id"] for s in statuses] == [10, 142]
    assert wh.execute("select id from raw_amocrm.events").fetchone()[0] == "01evt"
    assert sorted(wh.execute("select entity_type, id from raw_amocrm.notes").fetchall()) == [
        ("contacts", 401), ("leads", 401)]
    # history comes month by month; August holds 2 leads, a full page at limit 2, so the list
    # has a next link and its second page answers 204
    log = app.state.amo.requests
    second_pages = [r for r in log if r["path"] == "/api/v4/leads" and "page=2" in r["query"]
                    and "only_deleted" not in r["query"]]
    assert [r["status"] for r in second_pages] == [204]
    assert all(r["status"] in (200, 204) for r in log)
    # the contact's custom field 777 has no definition: reported, not dropped
    contacts = next(r for r in results if r.entity == "contacts")
    detail = wh.execute("select detail from raw_meta.load_batches where batch_id = %s",
                        (contacts.batch_id,)).fetchone()[0]
    assert detail["custom_fields_unknown"] == [777]
    assert all(r.rows_read == r.rows_loaded + r.rows_quarantined for r in results)


def test_malformed_records_are_quarantined_and_balance(data, wh):
    # one history chunk (September), so the emulator serves each record once: records whose time
    # it cannot read pass every filter, as the API would hand them to every window
    write(data, "leads", [lead(1, ts(9, 1, 1)), "not an object", {"name": "no id", "updated_at": ts(9, 1, 2)},
                          {"id": 7, "name": "bad time", "updated_at": "вчера"}, lead(2, ts(9, 1, 3))])
    with running(app_for(data)) as url:
        amocrm.extract_load(config(url, entities=["leads"], start_date="2026-09-01"), "default", WINDOW, wh)
    assert set(leads_in(wh)) == {1, 2}
    reasons = sorted(r[0] for r in wh.execute("select reason from raw_meta.quarantine where entity = 'leads'"))
    assert reasons == ["no id", "not a JSON object (str)", "unparseable updated_at: 'вчера'"]
    read, loaded, quarantined = wh.execute(
        "select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) from raw_meta.load_batches "
        "where entity = 'leads'").fetchone()
    assert (read, loaded, quarantined) == (5, 2, 3)


def test_deleted_leads_are_flagged(data, wh):
    # lead 3 is in the trash (only_deleted list); lead 2 is named by a lead_deleted event
    write(data, "leads", [lead(1, ts(6, 10)), lead(2, ts(7, 5)), lead(4, ts(8, 30))])
    write(data, "deleted_leads", [lead(3, ts(8, 25))])
    write(data, "events", [{"id": "e1", "type": "lead_deleted", "entity_id": 2, "entity_type": "lead",
                            "created_at": ts(8, 28)}])
    with running(app_for(data)) as url:
        results = amocrm.extract_load(config(url, entities=["leads", "events"]), "default", WINDOW, wh)
    assert {i: d for i, (_, d) in leads_in(wh).items()} == {1: False, 2: True, 3: True, 4: False}
    events = [r for r in results if r.entity == "events"]
    flagged = wh.execute("select sum((detail->>'leads_flagged_deleted')::int) from raw_meta.load_batches "
                         "where batch_id = any(%s)", ([r.batch_id for r in events],)).fetchone()[0]
    assert flagged == 1


def test_incremental_run_with_lookback_picks_up_a_late_lead(data, wh):
    with running(app_for(data)) as url:
        cfg = config(url, entities=["leads"])
        amocrm.extract_load(cfg, "default", WINDOW, wh)  # history up to 2026-09-02 00:00 MSK
        # lead 2 changes, but its updated_at says 31 August: it reached the API after the first run
        write(data, "leads", [lead(1, ts(6, 10)), lead(2, ts(8, 31, 20), name="поздняя правка"),
                              lead(3, ts(8, 20)), lead(4, ts(8, 30)), lead(5, ts(9, 2, 9))])
        amocrm.extract_load(cfg, "default", NEXT_WINDOW, wh)
    got = leads_in(wh)
    assert got[2][0] == "поздняя правка"
    assert 5 in got
    hwm = get_state(wh, "amocrm", "default", "hwm:leads")
    assert dt.datetime.fromisoformat(hwm) == NEXT_WINDOW.end


def test_incremental_window_without_lookback_would_miss_it(data, wh):
    """The control for the lookback test: with no lookback the late lead is not seen."""
    with running(app_for(data)) as url:
        amocrm.extract_load(config(url, entities=["leads"]), "default", WINDOW, wh)
        write(data, "leads", [lead(2, ts(8, 31, 20), name="поздняя правка")])
        amocrm.extract_load(config(url, entities=["leads"], lookback_days=0), "default", NEXT_WINDOW, wh)
    assert leads_in(wh)[2][0] != "поздняя правка"


def test_same_window_twice_gives_identical_tables(data, wh):
    write(data, "deleted_leads", [lead(9, ts(8, 1))])
    with running(app_for(data)) as url:
        amocrm.extract_load(config(url), "default", WINDOW, wh)
        first = checksum(wh)
        amocrm.extract_load(config(url), "default", WINDOW, wh)  # a retry of the same full run
        second = checksum(wh)
        amocrm.extract_load(config(url), "default", Window.for_day(dt.date(2026, 9, 1)), wh)  # incremental
        third = checksum(wh)
    assert first == second == third
    assert first["deleted"] == "9"


@pytest.mark.parametrize("second", [WINDOW, NEXT_WINDOW], ids=["retry", "next-day"])
def test_history_resumes_after_a_crash_without_repulling_committed_months(data, wh, second):
    app = app_for(data)
    # June, July, August, September: each month asks for live and deleted leads; the fifth
    # request (August, live) fails with an error that is not retried
    app.state.faults.add(path="^/api/v4/leads$", status=400, body={"title": "boom"}, after=4, times=1)
    with running(app) as url:
        cfg = config(url, entities=["leads"])
        with pytest.raises(amocrm.AmoError):
            amocrm.extract_load(cfg, "default", WINDOW, wh)
        assert set(leads_in(wh)) == {1, 2}  # June and July committed
        wh.commit()
        crash_at = len(app.state.amo.requests)
        # a retry of the same run, or the next day's run arriving before any retry
        amocrm.extract_load(cfg, "default", second, wh)
    second_run = [r for r in app.state.amo.requests[crash_at:] if r["path"] == "/api/v4/leads"]
    froms = {int(parse_qs(r["query"])["filter[updated_at][from]"][0]) for r in second_run}
    august = int(dt.datetime(2026, 8, 1, tzinfo=MSK).timestamp())
    assert froms and min(froms) == august
    assert set(leads_in(wh)) == {1, 2, 3, 4}
    statuses = [r[0] for r in wh.execute("select status from raw_meta.load_batches where entity = 'leads' "
                                         "order by started_at")]
    assert statuses == ["loaded", "loaded", "failed", "loaded", "loaded"]


def test_client_throttles_itself_to_seven_requests_a_second(data, wh):
    # the leads sit in the last history month, so the first run ends in a dense burst of pages
    write(data, "leads", [lead(i, ts(9, 1, 1) + i) for i in range(1, 13)])
    app = emulator.create_app(data, rate_limit=7)
    with running(app) as url:
        cfg = config(url, entities=["leads"], rate_limit=7, page_limit=1)
        amocrm.extract_load(cfg, "default", WINDOW, wh)
        # the next run starts at once, with a new client: the account's allowance is still spent
        amocrm.extract_load(cfg, "default", NEXT_WINDOW, wh)
    log = app.state.amo.requests
    assert len(log) >= 20  # enough requests that an unthrottled client would exceed 7 in a second
    times = sorted(r["t"] for r in log)
    gaps = [round(b - a, 3) for a, b in zip(times, times[7:], strict=False)]  # span of every 8 in a row
    assert all(r["status"] in (200, 204) for r in log), (Counter(r["status"] for r in log), gaps)
    # every sliding one-second window at the emulator holds at most 7 requests
    assert min(gaps) >= 1.0, gaps
    assert len(leads_in(wh)) == 12


def test_unthrottled_burst_is_limited_by_the_emulator(data):
    """The emulator side of the throttle test: a burst above 7/s does get 429s."""
    import httpx

    app = emulator.create_app(data, rate_limit=7, block_after=100)
    with running(app) as url, httpx.Client(base_url=url, headers={"Authorization": "Bearer demo-token"}) as http:
        statuses = Counter(http.get("/api/v4/users").status_code for _ in range(20))
    assert statuses[200] >= 7 and statuses[429] >= 1


def test_429_is_retried_then_succeeds(data, wh):
    app = app_for(data)
    app.state.faults.add(path="^/api/v4/leads$", status=429, retry_after=0.05, times=2)
    with running(app) as url:
        amocrm.extract_load(config(url, entities=["leads"]), "default", WINDOW, wh)
    statuses = [r["status"] for r in app.state.amo.requests if r["path"] == "/api/v4/leads"]
    assert statuses[:3] == [429, 429, 200]
    assert len(leads_in(wh)) == 4


def test_server_rate_limit_without_retry_after_backs_off_and_completes(data, wh):
    # a client configured far above the server's limit meets real 429s (no Retry-After) and backs off
    app = emulator.create_app(data, rate_limit=3, block_after=1000)
    with running(app) as url:
        amocrm.extract_load(config(url, entities=["leads"], page_limit=1, backoff_base=0.3), "default", WINDOW, wh)
    statuses = Counter(r["status"] for r in app.state.amo.requests)
    assert statuses[429] >= 1
    assert len(leads_in(wh)) == 4


def test_blocked_account_fails_at_once_without_a_retry_storm(data, wh):
    app = emulator.create_app(data, rate_limit=2, block_after=2, block_seconds=60)
    with running(app) as url:
        with pytest.raises(amocrm.AmoBlockedError, match="403"):
            amocrm.extract_load(config(url, entities=["leads"], page_limit=1, backoff_base=0.01, max_retries=50),
                                "default", WINDOW, wh)
    log = sorted(app.state.amo.requests, key=lambda r: r["t"])
    first_403 = next(i for i, r in enumerate(log) if r["status"] == 403)
    assert len(log) - first_403 - 1 <= 2


def test_expired_token_is_refreshed_and_rotation_persisted(data, wh):
    app = app_for(data, refresh_token="r0", access_ttl=3600)
    amo = app.state.amo
    oauth = {"client_id": "demo-client", "client_secret": "demo-secret", "refresh_token": "r0"}
    with running(app) as url:
        cfg = config(url, entities=["users"], **oauth)
        amo.expire_access_tokens()
        amocrm.extract_load(cfg, "default", WINDOW, wh)
        saved = get_state(wh, "amocrm", "default", "oauth")
        wh.commit()
        assert amo.refreshes == [{"used": "r0", "issued": saved["refresh_token"]}]
        # a day later: the access token has expired again and r0 is dead; the stored pair carries on
        amo.expire_access_tokens()
        amocrm.extract_load(cfg, "default", WINDOW, wh)
    assert [r["used"] for r in amo.refreshes] == ["r0", saved["refresh_token"]]
    assert get_state(wh, "amocrm", "default", "oauth")["refresh_token"] == amo.refreshes[-1]["issued"]
    assert wh.execute("select count(*) from raw_amocrm.users").fetchone()[0] == 1


def test_401_without_refresh_credentials_fails_clearly(data, wh):
    app = app_for(data)
    app.state.amo.expire_access_tokens()
    with running(app) as url:
        with pytest.raises(amocrm.AmoAuthError, match="refresh_token"):
            amocrm.extract_load(config(url, entities=["users"]), "default", WINDOW, wh)


def test_transport_errors_and_5xx_are_retried_boundedly(data, wh):
    app = app_for(data)
    app.state.faults.add(path="^/api/v4/users$", reset=True, times=1)
    app.state.faults.add(path="^/api/v4/users$", status=502, times=1)
    app.state.faults.add(path="^/api/v4/contacts$", status=503, times=100)
    with running(app) as url:
        amocrm.extract_load(config(url, entities=["users"]), "default", WINDOW, wh)
        assert wh.execute("select count(*) from raw_amocrm.users").fetchone()[0] == 1
        with pytest.raises(amocrm.AmoError, match="503 after 3 attempts"):
            amocrm.extract_load(config(url, entities=["contacts"], max_retries=2), "default", WINDOW, wh)


def test_rotated_refresh_token_survives_a_failed_batch(data, wh):
    """The refresh happens inside a batch that then fails: its data rolls back, the new pair must not."""
    app = app_for(data, refresh_token="r0")
    app.state.amo.expire_access_tokens()
    app.state.faults.add(path="^/api/v4/leads$", status=400, after=1, times=1)  # the request after the refresh
    oauth = {"client_id": "demo-client", "client_secret": "demo-secret", "refresh_token": "r0"}
    with running(app) as url:
        with pytest.raises(amocrm.AmoError, match="HTTP 400"):
            amocrm.extract_load(config(url, entities=["leads"], **oauth), "default", WINDOW, wh)
    assert wh.execute("select to_regclass('raw_amocrm.leads')").fetchone()[0] is None  # rolled back
    issued = app.state.amo.refreshes[0]["issued"]
    assert get_state(wh, "amocrm", "default", "oauth")["refresh_token"] == issued


def test_request_throttle_never_allows_more_than_rate_in_a_period():
    """Deterministic: a fake clock; 30 acquisitions, any window of 1.1 s holds at most 7."""
    now = [0.0]
    throttle = amocrm.RequestThrottle(7, per=1.0, margin=0.1, clock=lambda: now[0],
                                      sleep=lambda s: now.__setitem__(0, now[0] + s))
    sent = []
    for _ in range(30):
        throttle.acquire()
        sent.append(now[0])
        now[0] += 0.01  # the request itself
    assert max(sum(1 for u in sent[i:] if u - t < 1.1 - 1e-9) for i, t in enumerate(sent)) == 7
    assert sent[7] >= sent[0] + 1.1 - 1e-9


def _reference_page(records: list, query: dict, horizon: float, page: int, limit: int) -> list:
    """The list contract written out plainly (the emulator before its sorted indexes): filter
    every record (unreadable times pass), hide records after the horizon, sort, slice."""
    def num(v):
        if isinstance(v, bool):
            return None
        try:
            return float(v) if isinstance(v, int | float | str) else None
        except ValueError:
            return None

    def t(rec, f):
        return num(rec.get(f)) if isinstance(rec, dict) else None

    chosen = []
    for rec in records:
        ok = all(t(rec, f) is None or ((lo is None or t(rec, f) >= lo) and (hi is None or t(rec, f) <= hi))
                 for f, (lo, hi) in query["ranges"].items())
        seen = t(rec, "updated_at") or t(rec, "created_at")
        if ok and (seen is None or seen < horizon):
            chosen.append(rec)
    name, asc = query["order"]

    def key(rec):
        rid = rec.get("id") if isinstance(rec, dict) else None
        value = num(rid) if name == "id" else t(rec, name)
        return (value if value is not None else float("-inf"), str(rid))

    chosen.sort(key=key, reverse=not asc)
    return [rec.get("_served", rec) for rec in chosen[(page - 1) * limit: page * limit]]


def test_list_pages_match_the_plain_contract_for_random_filters(tmp_path):
    """Paging through sorted indexes (bisection) answers exactly what filtering the whole list
    would: ties, records without times, malformed lines, odd ids, descending order, the horizon."""
    import random

    import httpx

    rnd = random.Random(8)
    base = ts(9, 1)
    records: list = []
    for i in range(400):
        rec = {"id": rnd.choice([i, i, i, str(i), None, 10**20 + i]), "name": f"lead {i}"}
        for f in ("updated_at", "created_at"):
            roll = rnd.random()
            if roll < 0.08:
                continue  # no time: passes every filter
            rec[f] = (str(base + rnd.randrange(0, 40) * 3600) if roll < 0.15
                      else base + rnd.randrange(0, 40) * 3600)  # many ties
        records.append(rec)
    records[7:7] = ["{not json", "[1, 2]", "\ufeff" + json.dumps({"id": 9001, "updated_at": base + 7200}),
                    json.dumps({"id": 9002, "name": "Сделка №2 — «кофе»", "updated_at": base + 3600})]
    write(tmp_path, "leads", records)

    def served(r):  # what a line is served as: a record; valid JSON that is no object: itself; else a string
        try:
            value = json.loads(r.encode("utf-8"))
        except ValueError:
            return {"_served": r}
        return value if isinstance(value, dict) else {"_served": value}

    parsed = [r if isinstance(r, dict) else served(r) for r in records]
    horizon = dt.datetime.combine(dt.date(2026, 9, 2), dt.time(), ZoneInfo("Europe/Moscow")).timestamp()
    app = app_for(tmp_path, today=dt.date(2026, 9, 1))
    checked = 0
    with running(app) as url, httpx.Client(base_url=url, headers={"Authorization": "Bearer demo-token"}) as http:
        for _ in range(60):
            field = rnd.choice(["updated_at", "created_at"])
            order = (rnd.choice([field, field, "id", "updated_at"]), rnd.random() < 0.6)
            ranges = {}
            if rnd.random() < 0.8:
                lo, hi = sorted(base + rnd.randrange(-2, 42) * 3600 for _ in range(2))
                ranges[field] = (lo if rnd.random() < 0.9 else None, hi if rnd.random() < 0.9 else None)
            if rnd.random() < 0.15:
                ranges["created_at" if field == "updated_at" else "updated_at"] = (base + 3600 * 5, None)
            params = {f"order[{order[0]}]": "asc" if order[1] else "desc", "limit": rnd.choice([7, 50, 250])}
            for f, (lo, hi) in ranges.items():
                if lo is not None:
                    params[f"filter[{f}][from]"] = int(lo)
                if hi is not None:
                    params[f"filter[{f}][to]"] = int(hi)
            query = {"ranges": ranges, "order": order}
            for page in range(1, 80):
                resp = http.get("/api/v4/leads", params={**params, "page": page})
                want = _reference_page(parsed, query, horizon, page, params["limit"])
                if resp.status_code == 204:
                    assert want == [], (params, page)
                    break
                got = resp.json()["_embedded"]["leads"]
                assert got == want, (params, page)
                checked += len(got)
    assert checked > 1000


def test_malformed_line_is_served_as_a_string_and_records_as_stored(tmp_path):
    import httpx

    write(tmp_path, "leads", [lead(1, ts(8, 1)), "{broken", lead(2, ts(8, 2))])
    with (tmp_path / "amocrm" / "leads.jsonl").open("ab") as fh:  # not UTF-8: json refuses it, so must we
        fh.write(b'{"id": 3, "name": "\xff", "updated_at": %d}\n' % ts(8, 3))
    with running(app_for(tmp_path, today=dt.date(2026, 9, 1))) as url:
        resp = httpx.get(f"{url}/api/v4/leads", headers={"Authorization": "Bearer demo-token"},
                         params={"limit": 250, "order[updated_at]": "asc"})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    items = resp.json()["_embedded"]["leads"]
    # unreadable lines have no time: they sort first, in file order
    assert items == ["{broken", f'{{"id": 3, "name": "\ufffd", "updated_at": {ts(8, 3)}}}',
                     lead(1, ts(8, 1)), lead(2, ts(8, 2))]


def test_rate_limit_none_lifts_the_emulated_quota(data):
    import httpx

    app = emulator.create_app(data, rate_limit=None, block_after=1)
    with running(app) as url, httpx.Client(base_url=url, headers={"Authorization": "Bearer demo-token"}) as http:
        statuses = Counter(http.get("/api/v4/users").status_code for _ in range(40))
    assert statuses == {200: 40}


@pytest.mark.parametrize(("extra", "rate"), [({}, 7.0), ({"requests_per_second": "0"}, 0.0),
                                             ({"requests_per_second": 3}, 3.0), ({"rate_limit": 5}, 5.0)])
def test_requests_per_second_extra_sets_the_client_throttle(extra, rate):
    from customer_warehouse.sources.amocrm.client import NoThrottle, RequestThrottle
    from customer_warehouse.sources.amocrm.loader import Settings

    cfg = SourceConfig("amocrm_default", "amocrm", host="http://127.0.0.1:9", password="t", extra=extra)
    settings = Settings.from_config(cfg, "default")
    assert settings.rate_limit == rate
    client = amocrm.AmoClient(settings.base_url, "t", rate_limit=settings.rate_limit)
    assert isinstance(client.throttle, NoThrottle if rate == 0 else RequestThrottle)
    client.close()


def test_unthrottled_client_sends_faster_than_the_documented_limit(data, wh):
    """``requests_per_second: 0`` (emulators and the bench only): no client pacing at all."""
    write(data, "leads", [lead(i, ts(9, 1, 1) + i) for i in range(1, 25)])
    app = emulator.create_app(data, rate_limit=None)
    with running(app) as url:
        amocrm.extract_load(config(url, entities=["leads"], rate_limit=None, requests_per_second=0, page_limit=1),
                            "default", WINDOW, wh)
    times = sorted(r["t"] for r in app.state.amo.requests)
    assert len(times) >= 24 and len(leads_in(wh)) == 24
    assert min(b - a for a, b in zip(times, times[7:], strict=False)) < 1.0  # 8 within a second


def _random_index(tmp_path: Path, rnd, n: int = 600, nan: bool = False) -> emulator._Columns:
    """A file with ties, zeros, missing, textual and non-finite times, odd ids and broken lines
    (``nan``: also "nan" times and ids, which only the scanning path serves)."""
    base = ts(9, 1)
    lines = []
    for i in range(n):
        rec: dict = {"id": rnd.choice([i, i, str(i), f"0x{i}", None, 10**20 + i, True, 1.5 * i] + ["nan"] * nan)}
        for f in ("updated_at", "created_at"):
            roll = rnd.random()
            if roll < 0.08:
                continue
            rec[f] = (rnd.choice([0, None, "inf", "-inf", True] + ["nan"] * nan) if roll < 0.14
                      else str(base + rnd.randrange(0, 60) * 3600) if roll < 0.2
                      else base + rnd.randrange(0, 60) * 3600)
        lines.append(json.dumps(rec))
    lines[5:5] = ["{not json", "[1, 2]", "\ufeff" + json.dumps({"id": 9001, "updated_at": base + 7200}),
                  json.dumps({"id": 9002, "updated_at": float("inf")})]  # Infinity literal
    write(tmp_path, "leads", lines)
    return emulator.JsonlIndex(tmp_path / "amocrm" / "leads.jsonl").entries()


@pytest.mark.parametrize("seed", range(6))
def test_numpy_orders_equal_the_python_orders(tmp_path, seed):
    """The numpy sorted orders (visible records, positions, bisection values, blank count) are
    exactly the plain-Python ones, for every order field and direction, with and without a horizon."""
    import random

    rnd = random.Random(seed)
    cols = _random_index(tmp_path, rnd, nan=seed % 2 == 1)
    assert cols.odd_times["updated_at"] and cols.slow  # the odd cases are really in the file
    compared = 0
    for horizon in (None, ts(9, 2) + rnd.randrange(0, 40) * 3600, ts(1, 1), ts(12, 1)):
        for name in ("updated_at", "created_at", "id", "name"):
            if not cols.exact_sortable(name):  # a NaN key: served by the scan, never from an order
                continue
            compared += 1
            for asc in (True, False):
                py = cols._ordered_py(name, asc, horizon)
                np_ = cols._ordered_np(name, asc, horizon)
                assert py[0] == np_[0], (name, asc, horizon)
                assert py[1].tobytes() == np_[1].tobytes() and py[2] == np_[2], (name, asc, horizon)
    assert compared >= 4  # the visibility rule (NaN times included) is checked through every horizon


def test_window_pages_equal_a_scan_on_a_large_list(tmp_path):
    """``filter[updated_at]`` windows over many records (the incremental walk) are cut out of the
    sorted order and equal the scanning path, page by page, ascending and descending."""
    import random

    rnd = random.Random(3)
    base = ts(9, 1)
    write(tmp_path, "leads", [{"id": i, "updated_at": base + rnd.randrange(0, 5000) * 60} for i in range(5000)])
    cols = emulator.JsonlIndex(tmp_path / "amocrm" / "leads.jsonl").entries()
    for _ in range(40):
        lo = base + rnd.randrange(-10, 5000) * 60
        hi = lo + rnd.randrange(0, 800) * 60
        asc = rnd.random() < 0.7
        ranges = {"updated_at": (lo, hi)}
        whole = emulator._select_scan(cols, ranges, "updated_at", asc, None)
        limit = rnd.choice([50, 250])
        for page in range(len(whole) // limit + 2):
            got = emulator._select(cols, ranges, ("updated_at", asc), None, page * limit, (page + 1) * limit)
            assert got == whole[page * limit:(page + 1) * limit]


def test_an_emulator_started_again_reuses_the_index_and_sees_a_changed_file(data):
    import httpx

    path = data / "amocrm" / "leads.jsonl"
    first = emulator.shared_index(path)
    assert emulator.shared_index(path) is first
    params = {"limit": 250, "order[updated_at]": "asc"}
    with running(app_for(data)) as url:
        assert len(httpx.get(f"{url}/api/v4/leads", headers={"Authorization": "Bearer demo-token"},
                             params=params).json()["_embedded"]["leads"]) == 4
    built = first._columns
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(lead(5, ts(8, 31))) + "\n")
    with running(app_for(data)) as url:
        items = httpx.get(f"{url}/api/v4/leads", headers={"Authorization": "Bearer demo-token"},
                          params=params).json()["_embedded"]["leads"]
    assert [i["id"] for i in items] == [1, 2, 3, 4, 5] and first._columns is not built


def test_warm_indexes_every_file_before_the_first_request(data):
    app = app_for(data)
    paths = sorted((data / "amocrm").glob("*.jsonl"))
    assert paths
    app.state.warm()
    for path in paths:  # built, and the very index the requests will use
        idx = emulator.shared_index(path)
        assert idx._sig is not None, path.name
    leads = emulator.shared_index(data / "amocrm" / "leads.jsonl")
    assert len(leads.entries()) == 4


def test_strict_bodies_decode_with_msgspec_and_others_as_before():
    from customer_warehouse.sources.amocrm.client import decode_json

    assert decode_json(b'{"a": [1, 100000000000000000007, 1.5, "\\u00e9"]}') == (
        {"a": [1, 100000000000000000007, 1.5, "é"]}, True)
    for body in (b'{"a": NaN}', b'{"a": 1e999}', b'{"a": "\\ud800"}'):
        value, strict = decode_json(body)
        assert not strict
        assert value == json.loads(body) or value["a"] != value["a"]  # NaN
    with pytest.raises(ValueError):
        decode_json(b'{"a": 1')


def test_copy_lines_land_what_copy_rows_lands(wh):
    """The loader's own COPY text (record serialised by msgspec) gives the same table as psycopg's
    ``write_row`` of the tuple with the record as Jsonb: NUL, escapes, tabs, exponents, big ints."""
    from customer_warehouse.loading import RawBatch
    from customer_warehouse.sources.amocrm import loader

    ent = next(e for e in amocrm.all_entities() if e.name == "events")
    lead_ent = next(e for e in amocrm.all_entities() if e.name == "leads")
    items = [
        {"id": "a\tb\\c\nd\re\x00", "created_at": 1.5e9 + 0.25, "text": "x\x00y \t\n\r\\ «é» \u2028",
         "n": [1e16, 1.5e-7, 100.0, -0.0, 10**20, 0.1 + 0.2, None, True], "nested": {"k": {"z": 1e22}}},
        {"id": 7, "created_at": "1700000000", "type": "lead_deleted", "entity_type": "lead", "entity_id": 3},
    ]
    leads = [{"id": 10**15, "updated_at": 1_700_000_000, "name": "Сделка\t№1"}]
    for strict in (True, False):
        rows = [loader.to_row(ent, "acme\\1", i, strict=strict) for i in items]
        rows += [loader.to_row(lead_ent, "acme\\1", i, deleted=d, strict=strict) for i in leads for d in (True,)]
        for ent_, rows_ in ((ent, rows[:2]), (lead_ent, rows[2:])):
            table = loader.raw_table(ent_)
            table.ensure(wh)
            with RawBatch(wh, "amocrm", ent_.name, unit="acme") as b:
                b.read(len(rows_))
                b.upsert_text(table, table.column_names, [loader.copy_line(r) for r in rows_])
            cols = ", ".join(c for c in table.column_names)
            got = wh.execute(f"select {cols} from raw_amocrm.{ent_.table} order by id::text").fetchall()
            wh.execute(f"truncate raw_amocrm.{ent_.table}")
            legacy = [r[:-1] + (i,) for r, i in zip(rows_, items if ent_ is ent else leads, strict=True)]
            with RawBatch(wh, "amocrm", ent_.name, unit="acme") as b:
                b.read(len(legacy))
                b.upsert_rows(table, table.column_names, legacy)
            want = wh.execute(f"select {cols} from raw_amocrm.{ent_.table} order by id::text").fetchall()
            wh.execute(f"truncate raw_amocrm.{ent_.table}")
            wh.commit()
            assert got == want and len(got) == len(rows_)
