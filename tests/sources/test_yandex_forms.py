"""Yandex Forms: page-token, offset and URL-cursor paging, the async export, auth, landing."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators.server import running
from customer_warehouse.emulators.yandex_forms import create_app
from customer_warehouse.sources import Window, yandex_forms
from customer_warehouse.sources.typeform import ApiError
from customer_warehouse.sources.yandex_forms import YandexFormsClient

TOKEN, ORG = "ya-secret", "777"
SURVEY = "65f0c0ffee00000000000001"
MAPPING = """\
questions:
  exit_reason_q: exit_reason
  "1002": nps
  values_q: values
  email_q: respondent_email
  phone_q: respondent_phone
"""
BASE = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC)


def _answer(n: int) -> dict:
    return {"id": 5000 + n, "created": (BASE + dt.timedelta(hours=n)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "data": [
                {"id": "exit_reason_q", "slug": "exit", "value": {"key": "1", "text": "Дорого"}},
                {"id": "1002", "slug": "nps", "value": n % 11},
                {"id": "values_q", "value": [{"text": "Цена"}, {"text": "Скорость"}]},
                {"id": "email_q", "value": f"client{n}@Yandex.ru"},
                {"id": "phone_q", "value": f"+7 (903) 000-00-{n:02d}"},
            ]}


@pytest.fixture()
def dataset(tmp_path):
    folder = tmp_path / "data" / "yandex_forms" / SURVEY
    folder.mkdir(parents=True)
    lines = [json.dumps(_answer(n), ensure_ascii=False) for n in range(1, 24)]  # 23 answers
    lines.append(json.dumps({"id": 9999, "created": "2026-11-02T00:00:00Z", "data": "garbled"}))
    (folder / "answers.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / f"{SURVEY}.mapping.yml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def _cfg(url: str, root, **extra) -> SourceConfig:
    return SourceConfig("yandex_forms_default", "http", host=f"{url}/v1", password=TOKEN,
                        extra={"org_id": ORG, "surveys": SURVEY, "mapping_dir": str(root / "maps"),
                               "page_size": 10, "min_interval_seconds": 0, "backoff_seconds": 0.01,
                               "poll_interval_seconds": 0.01, **extra})


def _ids(pages) -> list[int]:
    return [item["id"] for page in pages for item in page]


def test_auth_and_org_headers_are_required(dataset):
    with running(create_app(dataset / "data", token=TOKEN, org_id=ORG)) as url:
        path = f"{url}/v1/surveys/{SURVEY}/answers"
        assert httpx.get(path).status_code == 401
        assert httpx.get(path, headers={"Authorization": f"OAuth {TOKEN}"}).status_code == 403
        ok = httpx.get(path, headers={"Authorization": f"OAuth {TOKEN}", "X-Org-Id": ORG})
        assert ok.status_code == 200 and len(ok.json()["answers"]) == 24 and ok.json()["next"] is None
        client = YandexFormsClient.from_config(
            SourceConfig("x", host=f"{url}/v1", password="wrong", extra={"org_id": ORG, "backoff_seconds": 0}))
        with pytest.raises(ApiError) as err:
            list(client.pages(SURVEY))
        assert err.value.status == 401


@pytest.mark.parametrize("style", [{"paging": "token"}, {"paging": "offset"}, {"paging": "token", "url": True}])
def test_every_paging_style_reads_everything_once(dataset, style):
    app = create_app(dataset / "data", token=TOKEN, org_id=ORG, next_style="url" if style.get("url") else "token")
    with running(app) as url:
        client = YandexFormsClient.from_config(_cfg(url, dataset, paging=style["paging"]))
        pages = list(client.pages(SURVEY))
        since = BASE + dt.timedelta(hours=5)
        until = BASE + dt.timedelta(hours=20)
        window_ids = _ids(client.pages(SURVEY, since, until))
    assert [len(p) for p in pages] == [10, 10, 4]
    assert sorted(_ids(pages)) == sorted([5000 + n for n in range(1, 24)] + [9999])
    assert sorted(window_ids) == [5000 + n for n in range(5, 21)] + [9999]  # both bounds inclusive


def test_async_export_polls_the_operation(dataset):
    app = create_app(dataset / "data", token=TOKEN, org_id=ORG, export_polls=2)
    with running(app) as url:
        client = YandexFormsClient.from_config(_cfg(url, dataset, mode="export"))
        pages = list(client.pages(SURVEY, BASE + dt.timedelta(hours=20), None))
    assert _ids(pages) == [5020, 5021, 5022, 5023]
    assert client.api.requests == 1 + 3 + 1  # start, 2×running + ok, download


def test_failed_export_operation_raises(dataset):
    app = create_app(dataset / "data", token=TOKEN, org_id=ORG)
    app.state.faults.add(path=r"^/v1/operations/", status=200, body={"id": "x", "status": "error"})
    with running(app) as url:
        client = YandexFormsClient.from_config(_cfg(url, dataset, mode="export"))
        with pytest.raises(ApiError, match="status 'error'"):
            list(client.pages(SURVEY))


@pytest.mark.parametrize("mode", ["pages", "export"])
def test_extract_load_lands_and_quarantines(dataset, wh, mode):
    app = create_app(dataset / "data", token=TOKEN, org_id=ORG)
    app.state.faults.add(path=f"/v1/surveys/{SURVEY}/answers", status=503, times=1)
    with running(app) as url:
        cfg = _cfg(url, dataset, mode=mode)
        assert yandex_forms.units(cfg) == [SURVEY]
        [result] = yandex_forms.extract_load(cfg, SURVEY, Window.for_day(dt.date(2026, 11, 19)), wh)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (24, 23, 1)
    row = wh.execute("select channel, submitted_at, respondent_email, respondent_phone, answers "
                     "from raw_surveys.responses where response_id = '5003'").fetchone()
    assert row[:4] == ("yandex_forms", BASE + dt.timedelta(hours=3), "client3@yandex.ru", "79030000003")
    assert row[4] == {"exit_reason": "Дорого", "nps": 3, "values": "Цена; Скорость",
                      "values_list": ["Цена", "Скорость"]}
    reason, raw = wh.execute("select reason, raw_text from raw_meta.quarantine").fetchone()
    assert reason == "malformed answer: data must be a list of question answers" and '"garbled"' in raw
    mark = wh.execute("select value from raw_meta.extract_state where source = 'yandex_forms'").fetchone()[0]
    assert dt.datetime.fromisoformat(mark) == BASE + dt.timedelta(hours=23)


def test_nested_answer_shape_params_and_bare_host(tmp_path, wh):
    survey = "6571a0c2e010db1a2f9e2b41"
    folder = tmp_path / "data" / "yandex_forms" / survey
    folder.mkdir(parents=True)
    items = [
        {"id": 700000001, "survey_id": survey, "created": "2026-11-03T09:00:00Z",
         "answer": {"data": {"exit_reason": {"value": [{"key": "o1", "text": "Нашли дешевле"}]},
                             "comment": {"value": "Спасибо"}}},
         "params": {"client_id": "1700000000999", "email": " Ex@Client.ru"}},
        {"id": 700000002, "survey_id": survey, "created": "2026-11-04T09:00:00Z",
         "answer": {"data": {"exit_reason": {"value": [{"key": "o2", "text": "Переехали"}]}}}, "params": "x"},
    ]
    (folder / "answers.jsonl").write_text("\n".join(json.dumps(i, ensure_ascii=False) for i in items) + "\n")
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / f"{survey}.mapping.yml").write_text(
        "fields: {exit_reason: exit_reason}\nhidden: {client_id: respondent_client_id, email: respondent_email}\n")
    with running(create_app(tmp_path / "data")) as url:  # the demo stack's defaults: demo-token, demo-org
        cfg = SourceConfig("yandex_forms_default", "http", host=url, password="demo-token",
                           extra={"org_id": "demo-org", "surveys": [survey], "mapping_dir": str(tmp_path / "maps"),
                                  "min_interval_seconds": 0})
        [result] = yandex_forms.extract_load(cfg, survey, Window.for_day(dt.date(2026, 11, 19)), wh)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    row = wh.execute("select respondent_client_id, respondent_email, answers from raw_surveys.responses").fetchone()
    assert row == ("1700000000999", "ex@client.ru", {"exit_reason": "Нашли дешевле"})
    assert wh.execute("select reason from raw_meta.quarantine").fetchone()[0] == (
        "malformed answer: params must be an object")
