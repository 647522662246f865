"""Metrica client and loader against the emulator and a real PostgreSQL: lifecycle, retries,
resume, integrity, quarantine, idempotency, schema drift, search phrases."""

from __future__ import annotations

import datetime as dt

import httpx
import psycopg
import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators.metrica import create_app, write_counter
from customer_warehouse.emulators.server import running
from customer_warehouse.loading import get_state, set_state
from customer_warehouse.sources import Window, metrica
from customer_warehouse.sources.metrica import MetricaAuthError, MetricaError, PollTimeout

COUNTER = 123
FIELDS = ["ym:s:visitID", "ym:s:clientID", "ym:s:dateTime", "ym:s:date", "ym:s:startURL",
          "ym:s:lastsignUTMSource", "ym:s:lastsignUTMTerm", "ym:s:goalsID"]
FILE_HEADER = [*FIELDS, "ym:s:pageViews"]
DAY = dt.date(2026, 1, 10)  # the business day; the emulator's today is the day after
WINDOW = Window.for_day(DAY)
TZ = "Asia/Yekaterinburg"


@pytest.fixture(scope="module")
def _module_db(make_database) -> str:
    return make_database("cwmetrica")


@pytest.fixture()
def wh(_module_db):
    """This module's database, emptied before each test: as isolated as a fresh database per test,
    without paying for creating and dropping twenty of them."""
    with psycopg.connect(_module_db) as conn:
        conn.execute("drop schema if exists raw_metrica, raw_meta cascade")
        conn.commit()
        yield conn


def _row(day: int, i: int) -> list[str]:
    url = {0: r"https://x.ru/?q=it\'s", 1: r"https://x.ru/a\tb"}.get(i, f"https://x.ru/p{i}")
    return [f"{day}{i:03d}", f"cid{i}", f"2026-01-{day:02d} 10:0{i}:00", f"2026-01-{day:02d}", url,
            "yandex", "espresso_home" if i else "", "[1,2]" if i == 2 else "[]", str(i + 1)]


def _dataset(tmp_path, days=10, per_day=3, extra_lines=(), hits=False, phrases=False):
    rows: list = [_row(d, i) for d in range(1, days + 1) for i in range(per_day)]
    for at, line in extra_lines:
        rows.insert(at, line)
    kw = {}
    if hits:
        kw.update(hits_header=["ym:pv:watchID", "ym:pv:date", "ym:pv:URL"],
                  hits=[[f"{d}{i}", f"2026-01-{d:02d}", f"https://x.ru/h{i}"] for d in range(1, days + 1)
                        for i in range(2)])
    if phrases:
        kw["search_phrases"] = [
            {"ym:s:date": f"2026-01-{d:02d}", "ym:s:lastSearchPhrase": p, "ym:s:startURL": "https://x.ru/hobby",
             "ym:s:lastUTMSource": "yandex", "ym:s:lastUTMMedium": "cpc", "ym:s:lastUTMCampaign": "c1",
             "ym:s:lastUTMTerm": "espresso_home", "ym:s:visits": v, "ym:s:users": v - 1}
            for d in range(1, days + 1) for p, v in (("кофемолка для дома", 12), (None, 30))]
    write_counter(tmp_path, COUNTER, visits_header=FILE_HEADER, visits=rows, timezone=TZ,
                  today=DAY.isoformat(), **kw)
    return tmp_path


def _cfg(url, token="demo-token", **extra) -> SourceConfig:
    base = {"counter_ids": [COUNTER], "visit_fields": FIELDS, "start_date": "2026-01-01", "search_phrases": False,
            "poll_interval": 0.02, "poll_max_interval": 0.05, "backoff": 0.01, "max_sleep": 1, "retries": 4}
    return SourceConfig("yandex_metrica_default", host=url, password=token, extra={**base, **extra})


def _app(path, **kw):
    kw.setdefault("processing_seconds", 0.05)
    return create_app(path, **kw)


def _visits(wh, cols="visit_id, visit_date::text, start_url, goals_id, counter_timezone"):
    return wh.execute(f"select {cols} from raw_metrica.visits order by visit_date, visit_id").fetchall()


def _checksum_data(wh):
    """Checksum of the data columns only (the load metadata differs between batches)."""
    row = wh.execute(
        "select count(*), md5(string_agg(concat_ws('|', counter_id, visit_date, counter_timezone, visit_id, "
        "client_id, date_time, date, start_url, lastsign_utm_source, lastsign_utm_term, goals_id), '#' "
        "order by visit_id)) from raw_metrica.visits"
    ).fetchone()
    wh.commit()
    return row


def _ledger(wh):
    rows = wh.execute("select entity, mode, status, rows_read, rows_loaded, rows_quarantined from "
                      "raw_meta.load_batches order by started_at").fetchall()
    wh.commit()
    return rows


def test_first_run_splits_by_evaluate_downloads_every_part_and_cleans(tmp_path, wh):
    app = _app(_dataset(tmp_path), max_days_per_request=3, part_rows=4)
    with running(app) as url:
        results = metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    st = app.state.metrica
    assert st.count("create") == 4  # 10 days, 3 a request
    assert st.count("download") == 10  # 9, 9, 9 and 3 rows in parts of 4 rows: 3 + 3 + 3 + 1
    assert {r.status for r in st.requests.values()} == {"cleaned_by_user"}
    assert [(r.date1.day, r.date2.day) for r in st.requests.values()] == [(1, 3), (4, 6), (7, 9), (10, 10)]
    rows = _visits(wh)
    assert len(rows) == 30 and results[0].rows_loaded == 30
    assert ("1000", "2026-01-01", "https://x.ru/?q=it's", "[]", TZ) in rows  # \' decoded by COPY
    assert ("1001", "2026-01-01", "https://x.ru/a\tb", "[]", TZ) in rows
    assert ("1002", "2026-01-01", "https://x.ru/p2", "[1,2]", TZ) in rows
    assert not [r for r in rows if r[0] == "ym:s:visitID"]  # no part header landed as data
    assert _ledger(wh) == [("visits", "full", "loaded", 30, 30, 0)]
    assert wh.execute("select count(*) from raw_meta.extract_state").fetchone()[0] == 0


def test_nightly_run_repulls_lookback_window_and_is_idempotent(tmp_path, wh):
    app = _app(_dataset(tmp_path))
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
        first = _checksum_data(wh)
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
        second = _checksum_data(wh)
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
        third = _checksum_data(wh)
    reqs = list(app.state.metrica.requests.values())
    assert [(r.date1, r.date2) for r in reqs] == [(dt.date(2026, 1, 1), DAY), (dt.date(2026, 1, 7), DAY),
                                                  (dt.date(2026, 1, 7), DAY)]
    assert first == second == third and first[0] == 30
    assert [m for _, m, *_ in _ledger(wh)] == ["full", "window", "window"]


def test_skipped_runs_leave_no_gap(tmp_path, wh):
    app = _app(_dataset(tmp_path))
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", Window.for_day(dt.date(2026, 1, 2)), wh)
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)  # runs for the 3rd … 9th never happened
    reqs = [(r.date1.day, r.date2.day) for r in app.state.metrica.requests.values()]
    assert reqs == [(1, 2), (3, 10)]
    assert len(_visits(wh)) == 30


def test_quota_and_server_errors_are_retried_until_success(tmp_path, wh):
    app = _app(_dataset(tmp_path), part_rows=20)
    plan = app.state.faults
    plan.add(path="/logrequests/evaluate$", status=420, retry_after=0.1, times=1)
    plan.add(path="/logrequests$", method="POST", status=429, retry_after=0.1, times=2,
             body={"errors": [{"error_type": "quota_requests_by_ip", "message": "slow down"}], "code": 429})
    plan.add(path=r"/logrequest/\d+$", status=503, times=3)
    plan.add(path="/download$", status=504, times=1)
    plan.add(path="/download$", reset=True, times=1)
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    fired = [(f["status"], f["reset"]) for f in plan.log]
    assert fired.count((429, False)) == 2 and fired.count((503, False)) == 3
    assert (420, False) in fired and (504, False) in fired and (None, True) in fired
    assert app.state.metrica.count("create") == 1  # a refused create is not a second request
    assert len(_visits(wh)) == 30


@pytest.mark.parametrize("token, fault", [("wrong", None), ("demo-token", 401)])
def test_auth_errors_fail_at_once_with_what_to_do(tmp_path, wh, token, fault):
    app = _app(_dataset(tmp_path))
    if fault:
        app.state.faults.add(path="/management/", status=fault, times=100,
                             body={"errors": [{"error_type": "unauthorized", "message": "no token"}]})
    with running(app) as url, pytest.raises(MetricaAuthError) as err:
        metrica.extract_load(_cfg(url, token=token), "123", WINDOW, wh)
    message = str(err.value)
    assert "counter 123" in message and "metrika:read" in message and "yandex_metrica_default" in message
    assert len(app.state.metrica.calls) + len(app.state.faults.log) == 1  # no retries


def test_processing_failed_gets_a_new_request_bounded(tmp_path, wh):
    app = _app(_dataset(tmp_path), fail_requests=1)
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
        assert app.state.metrica.count("create") == 2
        assert len(_visits(wh)) == 30
        wh.commit()
        app.state.metrica.fail_requests = 5
        with pytest.raises(MetricaError, match="failed 3 times"):
            metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    assert app.state.metrica.count("create") == 5
    assert app.state.metrica.count("download") == 1  # never after processing_failed


def test_retry_after_a_crash_resumes_the_saved_request(tmp_path, wh):
    app = _app(_dataset(tmp_path), processing_seconds=1.0)
    with running(app) as url:
        with pytest.raises(PollTimeout):  # the first try gives up polling (e.g. the task timed out)
            metrica.extract_load(_cfg(url, poll_timeout=0.1), "123", WINDOW, wh)
        saved = get_state(wh, "metrica", "123", "visits:2026-01-01:2026-01-10")
        wh.commit()
        (req,) = app.state.metrica.requests.values()
        assert saved["request_id"] == req.request_id and req.status == "created"  # kept queued
        metrica.extract_load(_cfg(url, poll_timeout=10), "123", WINDOW, wh)
    assert app.state.metrica.count("create") == 1
    assert len(_visits(wh)) == 30
    assert wh.execute("select count(*) from raw_meta.extract_state").fetchone()[0] == 0


def test_a_saved_request_that_is_gone_is_replaced(tmp_path, wh):
    with wh.transaction():
        set_state(wh, "metrica", "123", "visits:2026-01-01:2026-01-10",
                  {"request_id": 999999, "fields": FIELDS})
    app = _app(_dataset(tmp_path))
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    assert app.state.metrica.count("create") == 1
    assert len(_visits(wh)) == 30


def test_requests_saved_under_an_older_plan_are_released(tmp_path, wh):
    app = _app(_dataset(tmp_path), processing_seconds=5)
    with running(app) as url:
        old = httpx.post(f"{url}/management/v1/counter/123/logrequests", headers={"Authorization": "OAuth demo-token"},
                         params={"date1": "2026-01-01", "date2": "2026-01-05", "source": "visits",
                                 "fields": ",".join(FIELDS)}).json()["log_request"]["request_id"]
        with wh.transaction():
            set_state(wh, "metrica", "123", "visits:2026-01-01:2026-01-05", {"request_id": old, "fields": FIELDS})
        app.state.metrica.processing_seconds = 0.05
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    assert app.state.metrica.requests[old].status == "canceled"
    assert wh.execute("select count(*) from raw_meta.extract_state").fetchone()[0] == 0


def test_aborting_before_processed_cancels_the_request(tmp_path, wh):
    app = _app(_dataset(tmp_path), processing_seconds=5)
    app.state.faults.add(path=r"/logrequest/\d+$", status=500, times=2)
    with running(app) as url, pytest.raises(MetricaError, match="still failing"):
        metrica.extract_load(_cfg(url, retries=1), "123", WINDOW, wh)
    assert [r.status for r in app.state.metrica.requests.values()] == ["canceled"]


def test_damaged_parts_are_downloaded_again(tmp_path, wh):
    app = _app(_dataset(tmp_path), part_rows=10, cut_downloads=1)
    app.state.faults.add(path="/part/1/download$", truncate=25, times=1)  # dropped mid-body
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    assert app.state.metrica.count("download") == 5  # 3 parts + the cut one + the truncated one
    assert len(_visits(wh)) == 30


def test_a_part_that_stays_damaged_fails_the_run_and_loads_nothing(tmp_path, wh):
    app = _app(_dataset(tmp_path), cut_downloads=10)
    with running(app) as url, pytest.raises(metrica.PartIntegrityError, match="reported size"):
        metrica.extract_load(_cfg(url, download_attempts=2), "123", WINDOW, wh)
    assert app.state.metrica.count("download") == 2
    assert [r.status for r in app.state.metrica.requests.values()] == ["cleaned_by_user"]
    assert wh.execute("select to_regclass('raw_metrica.visits')").fetchone()[0] is None


def test_malformed_lines_are_quarantined_and_the_ledger_balances(tmp_path, wh):
    short = "\t".join(["5999", "cid", "2026-01-05 10:00:00", "2026-01-05"])  # 4 columns of 9
    long = "\t".join(_row(5, 8) + ["surplus"])
    continued = "\t".join(_row(6, 7)[:4] + ["first line\\"]) + "\nsecond\t" + "\t".join(_row(6, 7)[5:])
    path = _dataset(tmp_path, extra_lines=[(13, short), (14, long), (17, continued)])
    with open(path / "metrica" / "123" / "visits.tsv", "ab") as f:
        f.write("\t".join(_row(10, 9)).encode().replace(b"x.ru", b"x\xff.ru") + b"\n")  # not UTF-8
    app = _app(path)
    with running(app) as url:
        (res,) = metrica.extract_load(_cfg(url, visit_fields=FILE_HEADER), "123", WINDOW, wh)
    assert (res.rows_read, res.rows_loaded, res.rows_quarantined) == (34, 31, 3)
    quarantined = wh.execute("select reason, raw_text, source_part from raw_meta.quarantine order by row_number"
                             ).fetchall()
    assert [q[1] for q in quarantined[:2]] == [short, long]
    assert quarantined[0][0] == "4 columns where the header has 9"
    assert quarantined[2][0] == "not valid UTF-8" and "\\xff" in quarantined[2][1]
    assert all(q[2].startswith("request ") for q in quarantined)
    # a value continued over an escaped line feed is one record, not two broken ones
    assert ("6007", "2026-01-06", "first line\nsecond", "[]", TZ) in _visits(wh)


def test_a_new_field_is_added_as_a_column_and_reported(tmp_path, wh):
    app = _app(_dataset(tmp_path))
    with running(app) as url:
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
        metrica.extract_load(_cfg(url, visit_fields=FILE_HEADER), "123", WINDOW, wh)
    filled = dict(wh.execute("select visit_date::text, count(page_views) from raw_metrica.visits "
                             "group by 1").fetchall())
    assert filled["2026-01-06"] == 0 and filled["2026-01-07"] == 3  # only re-pulled days have it
    drift = wh.execute("select entity, column_name from raw_meta.schema_drift").fetchall()
    assert drift == [("visits", "page_views")]
    detail = wh.execute("select detail->'new_columns' from raw_meta.load_batches order by started_at desc "
                        "limit 1").fetchone()[0]
    assert detail == ["page_views"]


def test_zero_possible_days_fails_clearly_without_creating(tmp_path, wh):
    app = _app(_dataset(tmp_path), max_possible_day_quantity=0)
    with running(app) as url, pytest.raises(MetricaError, match="cannot export even one day"):
        metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    assert app.state.metrica.count("create") == 0


def test_a_business_day_not_yet_over_for_the_api_is_left_for_the_next_run(tmp_path, wh):
    app = _app(_dataset(tmp_path), today=DAY)  # the API still says "today" is D
    with running(app) as url:
        (res,) = metrica.extract_load(_cfg(url), "123", WINDOW, wh)
    (req,) = app.state.metrica.requests.values()
    assert (req.date1, req.date2) == (dt.date(2026, 1, 1), dt.date(2026, 1, 9))
    assert res.rows_loaded == 27 and _visits(wh)[-1][1] == "2026-01-09"


def test_hits_and_search_phrases_land_in_their_tables(tmp_path, wh):
    app = _app(_dataset(tmp_path, hits=True, phrases=True), sample_share=0.5)
    with running(app) as url:
        cfg = _cfg(url, hit_fields="ym:pv:watchID,ym:pv:URL", search_phrases=True, report_page_size=7,
                   report_accuracy="medium")
        results = metrica.extract_load(cfg, "123", WINDOW, wh)
        before = _checksum_phrases(wh)
        metrica.extract_load(cfg, "123", WINDOW, wh)
        after = _checksum_phrases(wh)
    assert [r.entity for r in results] == ["visits", "hits", "search_phrases"]
    hits = wh.execute("select hit_date::text, watch_id, url, date from raw_metrica.hits order by 2").fetchall()
    assert len(hits) == 20 and hits[0] == ("2026-01-01", "10", "https://x.ru/h0", "2026-01-01")
    assert app.state.metrica.count("report") == 3 + 2  # 20 rows in pages of 7, then the 4-day window (8)
    phrases = wh.execute("select report_date::text, search_phrase, start_url, utm_term, visits, users, sampled, "
                         "sample_share, record->'dimensions'->1->>'name' from raw_metrica.search_phrases "
                         "where report_date = '2026-01-03' order by visits").fetchall()
    assert [p[:8] for p in phrases] == [
        ("2026-01-03", "кофемолка для дома", "https://x.ru/hobby", "espresso_home", 12, 11, True, 0.5),
        ("2026-01-03", None, "https://x.ru/hobby", "espresso_home", 30, 29, True, 0.5),
    ]
    assert phrases[0][8] == "кофемолка для дома"
    assert before == after and before[0] == 20


def test_report_rows_of_the_wrong_shape_are_quarantined(tmp_path, wh):
    good = {"dimensions": [{"name": "2026-01-09"}, {"name": "кофе"}, {"name": "https://x.ru/"}, {"name": None},
                           {"name": None}, {"name": None}, {"name": None}], "metrics": [5, 4]}
    bad_date = {**good, "dimensions": [{"name": "yesterday"}, *good["dimensions"][1:]]}
    short = {"dimensions": good["dimensions"][:2], "metrics": [1, 1]}
    app = _app(_dataset(tmp_path))
    app.state.faults.add(path="^/stat/v1/data$", status=200, body={
        "data": [good, bad_date, short], "total_rows": 3, "sampled": False, "sample_share": 1})
    with running(app) as url:
        results = metrica.extract_load(_cfg(url, search_phrases=True), "123", WINDOW, wh)
    res = results[-1]
    assert (res.entity, res.rows_read, res.rows_loaded, res.rows_quarantined) == ("search_phrases", 3, 1, 2)
    reasons = [r[0] for r in wh.execute("select reason from raw_meta.quarantine order by row_number").fetchall()]
    assert reasons[0].startswith("ym:s:date 'yesterday'") and reasons[1].startswith("2 dimensions")
    assert wh.execute("select search_phrase, visits from raw_metrica.search_phrases").fetchall() == [("кофе", 5)]


def _checksum_phrases(wh):
    row = wh.execute("select count(*), md5(string_agg(concat_ws('|', report_date, search_phrase, visits, users, "
                     "sampled, record), '#' order by report_date, search_phrase)) "
                     "from raw_metrica.search_phrases").fetchone()
    wh.commit()
    return row


def test_units_are_the_configured_counters():
    assert metrica.units(SourceConfig("m", extra={"counter_ids": "123, 456"})) == ["123", "456"]
    assert metrica.units(SourceConfig("m", extra={"counter_ids": [789]})) == ["789"]
