"""The Metrica emulator against the documented contract: auth, validation, lifecycle, quota, parts."""

from __future__ import annotations

import datetime as dt
import time

import httpx
import pytest
from customer_warehouse.emulators.metrica import create_app, write_counter
from customer_warehouse.emulators.server import running

COUNTER = 123
HEADER = ["ym:s:visitID", "ym:s:date", "ym:s:dateTime", "ym:s:startURL", "ym:s:clientID"]
AUTH = {"Authorization": "OAuth demo-token"}
BASE = f"/management/v1/counter/{COUNTER}"


def _dataset(tmp_path, days=5, per_day=3):
    rows = [[str(d * 100 + i), f"2026-01-{d:02d}", f"2026-01-{d:02d} 10:0{i}:00", f"https://x.ru/p{i}", str(i)]
            for d in range(1, days + 1) for i in range(per_day)]
    phrases = [{"ym:s:date": f"2026-01-{d:02d}", "ym:s:lastSearchPhrase": p, "ym:s:startURL": "https://x.ru/",
                "ym:s:lastUTMSource": "yandex", "ym:s:lastUTMMedium": "cpc", "ym:s:lastUTMCampaign": "c",
                "ym:s:lastUTMTerm": "t", "ym:s:visits": v, "ym:s:users": v}
               for d in range(1, days + 1) for p, v in (("кофе", 12), ("зерно", 3))]
    write_counter(tmp_path, COUNTER, visits_header=HEADER, visits=rows, search_phrases=phrases,
                  today=f"2026-01-{days:02d}")
    return tmp_path


def _params(**kw):
    p = {"date1": "2026-01-01", "date2": "2026-01-05", "source": "visits", "fields": ",".join(HEADER)}
    p.update(kw)
    return p


def _wait_processed(c, rid):
    for _ in range(200):
        body = c.get(f"{BASE}/logrequest/{rid}").json()["log_request"]
        if body["status"] != "created":
            return body
        time.sleep(0.02)
    raise AssertionError("never processed")


def test_auth_missing_wrong_token_and_foreign_counter(tmp_path):
    with running(create_app(_dataset(tmp_path))) as url:
        assert httpx.get(url + BASE + "/logrequests").status_code == 401
        r = httpx.get(url + BASE + "/logrequests", headers={"Authorization": "OAuth nope"})
        assert r.status_code == 403 and r.json()["errors"][0]["error_type"] == "invalid_token"
        r = httpx.get(url + "/management/v1/counter/999/logrequests", headers=AUTH)
        assert r.status_code == 403 and r.json()["errors"][0]["error_type"] == "access_denied"
        assert httpx.get(url + BASE + "/logrequests", headers=AUTH).json() == {"requests": []}


@pytest.mark.parametrize("override, location", [
    ({"date2": "2026-01-06"}, "date2"),  # today (manifest today + 1) is not allowed
    ({"date1": "2024-12-01", "date2": "2026-01-01"}, "date1"),  # more than a year
    ({"fields": "ym:s:visitID,ym:s:noSuchField"}, "fields"),
    ({"fields": ",".join(["ym:s:visitID"] * 300)}, "fields"),  # > 3000 characters
    ({"source": "clicks"}, "source"),
    ({"date1": "2026-01-04", "date2": "2026-01-02"}, "date1"),
])
def test_create_validates_parameters(tmp_path, override, location):
    with running(create_app(_dataset(tmp_path))) as url:
        r = httpx.post(url + BASE + "/logrequests", params=_params(**override), headers=AUTH)
    body = r.json()
    assert r.status_code == 400
    assert body["code"] == 400 and body["errors"][0]["error_type"] == "invalid_parameter"
    assert body["errors"][0]["location"] == location


def test_evaluate_reports_max_days(tmp_path):
    app = create_app(_dataset(tmp_path), max_days_per_request=2)
    with running(app) as url:
        ev = httpx.get(url + BASE + "/logrequests/evaluate", params=_params(), headers=AUTH).json()
        assert ev == {"log_request_evaluation": {"possible": False, "max_possible_day_quantity": 2}}
        ok = httpx.get(url + BASE + "/logrequests/evaluate", params=_params(date2="2026-01-02"), headers=AUTH)
        assert ok.json()["log_request_evaluation"]["possible"] is True
        too_big = httpx.post(url + BASE + "/logrequests", params=_params(), headers=AUTH)
        assert too_big.status_code == 400


def test_lifecycle_parts_have_their_own_header_and_sizes(tmp_path):
    app = create_app(_dataset(tmp_path), processing_seconds=0.1, part_rows=4)
    fields = ["ym:s:date", "ym:s:visitID"]
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        req = c.post(BASE + "/logrequests", params=_params(fields=",".join(fields))).json()["log_request"]
        rid = req["request_id"]
        assert req["status"] == "created"
        early = c.get(f"{BASE}/logrequest/{rid}/part/0/download")
        assert early.status_code == 400  # not processed yet
        done = _wait_processed(c, rid)
        assert done["status"] == "processed"
        assert [p["part_number"] for p in done["parts"]] == [0, 1, 2, 3]  # 15 rows, 4 a part
        rows = []
        for p in done["parts"]:
            body = c.get(f"{BASE}/logrequest/{rid}/part/{p['part_number']}/download").content
            assert len(body) == p["size"]
            lines = body.decode().splitlines()
            assert lines[0] == "ym:s:date\tym:s:visitID"
            rows += lines[1:]
        assert len(rows) == 15 and rows[0] == "2026-01-01\t100"
        assert c.post(f"{BASE}/logrequest/{rid}/cancel").status_code == 400  # too late to cancel
        assert c.post(f"{BASE}/logrequest/{rid}/clean").json()["log_request"]["status"] == "cleaned_by_user"
        assert c.get(f"{BASE}/logrequest/{rid}/part/0/download").status_code == 400


def test_warm_indexes_every_log_file_before_the_first_request(tmp_path):
    app = create_app(_dataset(tmp_path, days=3, per_day=2))
    state = app.state.metrica
    assert state._files == {}
    app.state.warm()
    visits = state._files[(COUNTER, "visits")]
    assert [day for day, _, _ in visits._index] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    # the warmed index is the one requests use: a day's region is its two lines
    start, end = visits.region(dt.date(2026, 1, 2), dt.date(2026, 1, 2))
    assert [line.split(b"\t")[1] for line in visits.lines(start, end)] == [b"2026-01-02"] * 2
    assert state.log_file(COUNTER, "visits") is visits


def test_cancel_before_processed_and_processing_failed(tmp_path):
    app = create_app(_dataset(tmp_path), processing_seconds=0.2, fail_requests=1)
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        failing = c.post(BASE + "/logrequests", params=_params()).json()["log_request"]["request_id"]
        other = c.post(BASE + "/logrequests", params=_params()).json()["log_request"]["request_id"]
        assert c.post(f"{BASE}/logrequest/{other}/cancel").json()["log_request"]["status"] == "canceled"
        assert _wait_processed(c, failing)["status"] == "processing_failed"
        statuses = {r["request_id"]: r["status"] for r in c.get(BASE + "/logrequests").json()["requests"]}
        assert statuses == {failing: "processing_failed", other: "canceled"}


def test_parallel_quota_answers_429_with_retry_after(tmp_path):
    app = create_app(_dataset(tmp_path), processing_seconds=0.5, max_parallel=3)
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        codes = [c.post(BASE + "/logrequests", params=_params()).status_code for _ in range(3)]
        over = c.post(BASE + "/logrequests", params=_params())
    assert codes == [200, 200, 200]
    assert over.status_code == 429
    assert over.json()["errors"][0]["error_type"].startswith("quota")
    assert 0 < float(over.headers["retry-after"]) <= 2


def test_storage_limit_makes_evaluate_say_zero_days(tmp_path):
    app = create_app(_dataset(tmp_path), processing_seconds=0.0, max_uncleaned=1)
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        assert c.post(BASE + "/logrequests", params=_params()).status_code == 200
        ev = c.get(BASE + "/logrequests/evaluate", params=_params()).json()["log_request_evaluation"]
        assert ev == {"possible": False, "max_possible_day_quantity": 0}
        assert c.post(BASE + "/logrequests", params=_params()).status_code == 400


def test_reporting_paging_and_sampling(tmp_path):
    app = create_app(_dataset(tmp_path), sample_share=0.25)
    dims = "ym:s:date,ym:s:lastSearchPhrase"
    with running(app) as url, httpx.Client(base_url=url, headers=AUTH) as c:
        q = {"ids": COUNTER, "metrics": "ym:s:visits,ym:s:users", "dimensions": dims, "date1": "2026-01-01",
             "date2": "2026-01-05", "limit": 4, "sort": dims}
        pages = [c.get("/stat/v1/data", params={**q, "offset": off}).json() for off in (1, 5, 9)]
        assert [len(p["data"]) for p in pages] == [4, 4, 2]
        assert all(p["total_rows"] == 10 and p["sampled"] and p["sample_share"] == 0.25 for p in pages)
        keys = [tuple(d["name"] for d in r["dimensions"]) for p in pages for r in p["data"]]
        assert len(set(keys)) == 10 and keys == sorted(keys)
        full = c.get("/stat/v1/data", params={**q, "accuracy": "full", "offset": 1}).json()
        assert full["sampled"] is False and full["sample_share"] == 1.0
        assert c.get("/stat/v1/data", params={**q, "offset": 0}).status_code == 400
        assert c.get("/stat/v1/data", params={**q, "limit": 100_001}).status_code == 400
        grouped = c.get("/stat/v1/data", params={**q, "dimensions": "ym:s:lastSearchPhrase", "limit": 10,
                                                          "sort": "-ym:s:visits"}).json()
        assert {r["dimensions"][0]["name"]: r["metrics"][0] for r in grouped["data"]} == {"кофе": 60, "зерно": 15}
