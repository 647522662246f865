"""Typeform: the emulator's protocol, the client's cursor paging, 429 backoff, landing, quarantine."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators.server import running
from customer_warehouse.emulators.typeform import create_app
from customer_warehouse.sources import Window, typeform
from customer_warehouse.sources.typeform import ApiClient, ApiError, TypeformClient

TOKEN = "tf-secret"
FORM = "purpose01"
MAPPING = """\
fields:
  purpose_ref: purpose
  nps_ref: nps
  interests_ref: interests
  email_ref: respondent_email
hidden:
  client_id: respondent_client_id
"""


def _item(n: int, when: dt.datetime, **extra) -> dict:
    item = {
        "landing_id": f"l{n}", "token": f"tok{n:03d}", "landed_at": (when - dt.timedelta(minutes=3)).isoformat(),
        "submitted_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "hidden": {"client_id": f"17000000{n:03d}"},
        "calculated": {"score": 0},
        "answers": [
            {"field": {"id": "f1", "type": "multiple_choice", "ref": "purpose_ref"}, "type": "choice",
             "choice": {"label": "Для нашей кофейни"}},
            {"field": {"id": "f2", "type": "opinion_scale", "ref": "nps_ref"}, "type": "number", "number": n % 11},
            {"field": {"id": "f3", "type": "multiple_choice", "ref": "interests_ref"}, "type": "choices",
             "choices": {"labels": ["Зерно", "Обучение"]}},
            {"field": {"id": "f4", "type": "email", "ref": "email_ref"}, "type": "email", "email": f"U{n}@Example.com"},
            {"field": {"id": "f9", "type": "short_text", "ref": "unmapped"}, "type": "text", "text": "ignored"},
        ],
    }
    item.update(extra)
    return item


@pytest.fixture()
def dataset(tmp_path):
    base = dt.datetime(2026, 11, 10, 9, 0, tzinfo=dt.UTC)
    items = [_item(n, base + dt.timedelta(hours=n)) for n in range(1, 26)]  # 25 responses, hourly
    items.append({"token": "partial", "landed_at": "2026-11-10T08:00:00Z", "submitted_at": None})
    items.append(_item(99, base + dt.timedelta(days=30)))  # after the emulator's today: never served
    form_dir = tmp_path / "data" / "typeform" / FORM
    form_dir.mkdir(parents=True)
    (form_dir / "responses.jsonl").write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n")
    (tmp_path / "data" / "manifest.json").write_text(json.dumps({"today": "2026-11-20"}))
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / f"{FORM}.mapping.yml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def _cfg(url: str, root, **extra) -> SourceConfig:
    return SourceConfig("typeform_default", "http", host=url, password=TOKEN,
                        extra={"forms": [FORM], "mapping_dir": str(root / "maps"), "page_size": 10,
                               "min_interval_seconds": 0, "backoff_seconds": 0.01, **extra})


def test_emulator_protocol(dataset):
    app = create_app(dataset / "data", token=TOKEN)
    with running(app) as url:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert httpx.get(f"{url}/forms/{FORM}/responses").status_code == 401
        assert httpx.get(f"{url}/forms/nope/responses", headers=auth).status_code == 404
        assert httpx.get(f"{url}/forms/{FORM}/responses", params={"page_size": 1001}, headers=auth).status_code == 400
        bad = httpx.get(f"{url}/forms/{FORM}/responses", params={"before": "tok010", "sort": "submitted_at,asc"},
                        headers=auth)
        assert bad.status_code == 400
        page = httpx.get(f"{url}/forms/{FORM}/responses", headers=auth,
                         params={"since": "2026-11-10T12:00:00", "until": "2026-11-10T14:00:00Z", "page_size": 2}).json()
        assert page["total_items"] == 3 and page["page_count"] == 2
        assert [i["token"] for i in page["items"]] == ["tok005", "tok004"]  # newest first, bounds inclusive
        older = httpx.get(f"{url}/forms/{FORM}/responses", headers=auth,
                          params={"since": "2026-11-10T12:00:00", "page_size": 2, "before": "tok004"}).json()
        assert [i["token"] for i in older["items"]] == ["tok003"]
        everything = httpx.get(f"{url}/forms/{FORM}/responses", headers=auth, params={"page_size": 1000}).json()
        assert everything["total_items"] == 25  # no partial response, nothing after "today"


def test_client_pages_with_cursor_and_since_until(dataset):
    app = create_app(dataset / "data", token=TOKEN)
    with running(app) as url:
        client = TypeformClient.from_config(_cfg(url, dataset))
        since = dt.datetime(2026, 11, 10, 12, 0, tzinfo=dt.UTC)
        until = dt.datetime(2026, 11, 11, 9, 0, tzinfo=dt.UTC)
        pages = list(client.pages(FORM, since, until))
    tokens = [i["token"] for page in pages for i in page]
    assert [len(p) for p in pages] == [10, 10, 2]
    assert tokens == [f"tok{n:03d}" for n in range(24, 2, -1)]  # 24 … 3, no gaps, no repeats


def test_429_is_retried_after_retry_after(dataset):
    app = create_app(dataset / "data", token=TOKEN)
    app.state.faults.add(path=f"/forms/{FORM}/responses", status=429, retry_after=0.01, times=2,
                         body={"code": "TOO_MANY_REQUESTS"})
    app.state.faults.add(path=f"/forms/{FORM}/responses", truncate=20, after=1)  # a cut body on a later page
    with running(app) as url:
        client = TypeformClient.from_config(_cfg(url, dataset))
        tokens = [i["token"] for page in client.pages(FORM, None, None) for i in page]
    assert len(tokens) == 25 == len(set(tokens))
    assert client.api.retries == 3
    assert [f["status"] for f in app.state.faults.log[:2]] == [429, 429]


def test_throttle_paces_requests_without_waiting():
    sleeps: list[float] = []
    now = [100.0]

    def fake_sleep(seconds):
        sleeps.append(round(seconds, 3))
        now[0] += seconds

    api = ApiClient("http://unused", {}, min_interval=0.5, sleep=fake_sleep, clock=lambda: now[0])
    for _ in range(3):
        api._pace()
        now[0] += 0.1  # the request itself took 0.1 s
    assert sleeps == [0.4, 0.4]


def test_client_gives_up_on_auth_errors(dataset):
    app = create_app(dataset / "data", token=TOKEN)
    with running(app) as url:
        cfg = _cfg(url, dataset)
        client = TypeformClient.from_config(SourceConfig(cfg.conn_id, host=url, password="wrong", extra=cfg.extra))
        with pytest.raises(ApiError) as err:
            list(client.pages(FORM, None, None))
    assert err.value.status == 401 and client.api.retries == 0


def test_extract_load_incremental_with_malformed_item(dataset, wh):
    data = dataset / "data" / "typeform" / FORM / "responses.jsonl"
    with data.open("a") as fh:
        bad = _item(50, dt.datetime(2026, 11, 12, 8, 0, tzinfo=dt.UTC), answers="oops")
        fh.write(json.dumps(bad) + "\n")
    app = create_app(dataset / "data", token=TOKEN)
    window = Window.for_day(dt.date(2026, 11, 19))
    with running(app) as url:
        cfg = _cfg(url, dataset, start_date="2026-11-01", lookback_hours=12)
        assert typeform.units(cfg) == [FORM]
        [first] = typeform.extract_load(cfg, FORM, window, wh)
        assert (first.rows_read, first.rows_loaded, first.rows_quarantined) == (26, 25, 1)
        [second] = typeform.extract_load(cfg, FORM, Window.for_day(dt.date(2026, 11, 20)), wh)
    assert wh.execute("select count(*) from raw_surveys.responses").fetchone()[0] == 25
    row = wh.execute("select channel, form_id, submitted_at, respondent_email, respondent_client_id, answers "
                     "from raw_surveys.responses where response_id = 'tok003'").fetchone()
    assert row[:5] == ("typeform", FORM, dt.datetime(2026, 11, 10, 12, tzinfo=dt.UTC), "u3@example.com", "17000000003")
    assert row[5] == {"purpose": "Для нашей кофейни", "nps": 3, "interests": "Зерно; Обучение",
                      "interests_list": ["Зерно", "Обучение"]}
    reason = wh.execute("select reason, raw_text from raw_meta.quarantine").fetchone()
    assert reason[0] == "malformed item: answers must be a list and hidden an object" and '"tok050"' in reason[1]
    # the second run asked only from the mark (newest good submission, 11-11 10:00 UTC) minus 12 h
    since = wh.execute("select detail->>'since' from raw_meta.load_batches where batch_id = %s",
                       (second.batch_id,)).fetchone()[0]
    assert dt.datetime.fromisoformat(since) == dt.datetime(2026, 11, 10, 22, tzinfo=dt.UTC)
    assert (second.rows_read, second.rows_quarantined) == (14, 1)  # tok013 … tok025 + the malformed one
