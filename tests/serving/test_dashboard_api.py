"""The dashboard's pages against a real published marts schema, read as bi_reader: every query
runs, the numbers shown equal SQL on the marts, languages and currency switch, personal data and
the bookkeeping stay out of reach, and a missing status view reads as "no status yet"."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from decimal import Decimal

import httpx
import psycopg
import pytest
from customer_warehouse.emulators.server import free_port
from customer_warehouse.serving import create_app, formatting
from customer_warehouse.serving.pages import load_pages
from customer_warehouse.serving.status import create_status_view
from fastapi.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dashboard_api")]
NBSP = "\u00a0"


@pytest.fixture(scope="module")
def client(published, bi_role):
    return TestClient(create_app(published[0], role=bi_role))


def sql(uri: str, query: str):
    with psycopg.connect(uri) as conn:
        return conn.execute(query).fetchall()


def payload(client, page: str, lang: str | None = "ru") -> dict:
    response = client.get(f"/api/pages/{page}", params={"lang": lang} if lang else {})
    assert response.status_code == 200, response.text
    return response.json()


def headline(data: dict, hid: str) -> dict:
    return next(h for h in data["headlines"] if h["id"] == hid)


def panel(data: dict, pid: str) -> dict:
    return next(p for p in data["panels"] if p["id"] == pid)


def column(p: dict, name: str) -> list:
    i = [c["name"] for c in p["columns"]].index(name)
    return [row[i] for row in p["rows"]]


@pytest.mark.parametrize("page_id", list(load_pages()))
def test_every_query_of_every_page_runs_as_bi_reader(client, bi_role, page_id):
    data = payload(client, page_id)

    assert data["reading_as"] == bi_role
    assert [h["error"] for h in data["headlines"]] == [None] * len(data["headlines"])
    for p in data["panels"]:
        assert (p["id"], p["state"], p["error"]) == (p["id"], "ok", None)
        assert p["points"] > 0 and len(p["text"]) == len(p["rows"])
        names = [c["name"] for c in p["columns"]]
        if p["type"] != "table":
            assert {p["chart"]["x"], *p["chart"]["y"], *p["chart"].get("y2", [])} <= set(names)


def test_profitability_numbers_equal_sql_on_the_marts(client, published):
    uri = published[0]
    data = payload(client, "profitability")
    (total_profit, revenue, customers, loss_share), = sql(
        uri, "select sum(profit), sum(revenue), count(*), avg((profit < 0)::int) from marts.customer_profitability")

    assert headline(data, "revenue")["text"] == f"1{NBSP}463{NBSP}000{NBSP}₽" and revenue == Decimal("1463000.00")
    assert headline(data, "total_profit")["text"] == formatting.money(total_profit, "ru")
    assert Decimal(str(headline(data, "total_profit")["value"])) == total_profit
    assert headline(data, "customers")["value"] == customers == 8
    assert headline(data, "loss_making_share")["text"] == formatting.percent(loss_share, "ru") == f"50,0{NBSP}%"

    curve = panel(data, "whale_curve")
    expected = sql(uri, "select customer_share, cumulative_profit_share from marts.whale_curve order by point")
    assert [tuple(Decimal(str(v)) for v in row) for row in curve["rows"]] == expected
    assert max(column(curve, "cumulative_profit_share")) > 1 and column(curve, "cumulative_profit_share")[-1] == 1

    by_job = dict(zip(column(panel(data, "profit_by_job"), "job_id"),
                      column(panel(data, "profit_by_job"), "profit"), strict=True))
    assert by_job == {job: float(p) for job, p in sql(uri, "select j.job_id, sum(p.profit) from marts.customer_jobs j "
                                                           "join marts.customer_profitability p using (customer_id) "
                                                           "group by j.job_id")}
    assert panel(data, "profit_by_job")["text"][0][0] == "Снабжение кофейни"  # job names in Russian


def test_customer_lists_are_de_identified(client, published):
    uri = published[0]
    data = payload(client, "profitability")
    top, bottom = panel(data, "top_customers"), panel(data, "bottom_customers")
    best, worst = sql(uri, "select md5(customer_id) from marts.customer_profitability "
                           "where profit_rank in (1, 8) order by profit_rank")

    assert column(top, "customer_ref")[0] == best[0][:10] and column(bottom, "customer_ref")[0] == worst[0][:10]
    shown = repr([p["text"] for p in data["panels"]]) + client.get("/pages/profitability").text
    personal = sql(uri, "select name, email, phone, customer_id from marts.customer_360")
    for name, email, phone, customer_id in personal:
        assert name not in shown and email not in shown and phone not in shown
        assert f"'{customer_id}'" not in shown


def test_jobs_and_churn_numbers_equal_sql(client, published):
    uri = published[0]
    jobs, churn = payload(client, "jobs"), payload(client, "churn")

    sizes = dict(zip(column(panel(jobs, "segment_sizes"), "job_id"), column(panel(jobs, "segment_sizes"), "customers"),
                     strict=True))
    assert sizes == dict(sql(uri, "select job_id, customers from marts.jtbd_segments where customers > 0"))
    assert sum(sizes.values()) == 8
    assert headline(jobs, "assigned_share")["value"] == pytest.approx(7 / 8)

    histogram = panel(churn, "p_alive_histogram")
    assert len(histogram["rows"]) == 10 and sum(column(histogram, "buyers")) == 7
    assert dict(zip(column(histogram, "p_alive_range"), column(histogram, "buyers"), strict=True))["90–100 %"] == 1
    (at_risk,), = sql(uri, "select count(*) from marts.customer_churn c join marts.customer_profitability p "
                           "using (customer_id) where p.abc_class in ('A', 'B') and c.p_alive < 0.5")
    assert headline(churn, "at_risk_valuable")["value"] == at_risk == len(panel(churn, "valuable_at_risk")["rows"])
    (budget,), = sql(uri, "select sum(retention_budget) from marts.customer_churn")
    assert headline(churn, "retention_budget")["text"] == formatting.money(budget, "ru") == f"15{NBSP}050{NBSP}₽"
    reasons = panel(churn, "reasons")
    assert sum(column(reasons, "buyers")) == sql(uri, "select count(*) from marts.customer_churn where is_churned")[0][0]
    assert {row[0] for row in reasons["text"]} == {"Конкурент или цена", "Недоволен", "Потребность исчезла", "Неизвестно"}


def test_episodic_numbers_equal_sql(client, published):
    uri = published[0]
    data = payload(client, "episodic")
    managers = panel(data, "card_by_manager")

    expected = dict(sql(uri, "select manager_name, round(avg(card_completeness), 4) from marts.customer_episodes "
                             "where manager_key is not null group by manager_name"))
    shown = dict(zip(column(managers, "manager_name"), column(managers, "avg_card_completeness"), strict=True))
    assert {k: Decimal(str(v)) for k, v in shown.items()} == expected
    assert headline(data, "complaints_12m")["value"] == sql(uri, "select sum(complaints_12m) "
                                                                 "from marts.customer_episodes")[0][0]
    frequency = panel(data, "purchase_frequency")
    assert sum(column(frequency, "customers_12m")) == 7  # c6 bought nothing in 12 months


def test_data_status_page_reads_the_status_view(client):
    ru, en = payload(client, "status"), payload(client, "status", "en")

    assert headline(ru, "last_publish")["text"] == "20.11.2026 03:15"  # Moscow time
    assert headline(en, "last_publish")["text"] == "2026-11-20 03:15"
    assert headline(ru, "quality_gate")["text"] == "С предупреждениями"
    assert headline(en, "quality_gate")["text"] == "With warnings" and headline(en, "failed_checks")["value"] == 1
    freshness = dict(zip(column(panel(en, "freshness"), "source"), column(panel(en, "freshness"), "hours_since_load"),
                         strict=True))
    assert freshness["metrica"] == pytest.approx(30, abs=0.5)  # the failed newer batch is not freshness
    assert freshness["amocrm"] == pytest.approx(5, abs=0.5)
    sources = {row[0]: (row[1], row[-2], row[-1]) for row in panel(en, "sources")["text"]}
    assert sources == {"Yandex Metrica": ("Failed", "0", "0"), "amoCRM": ("Loaded", "120", "2")}
    assert panel(en, "failed_quality_checks")["text"][0][:2] == ["customer_churn.p_alive_range", "Failed"]
    assert panel(ru, "failed_quality_checks")["text"][0][1] == "Не пройдена"


def test_no_status_view_reads_as_no_status_yet(make_database):
    uri = make_database("cwdash_empty")
    with psycopg.connect(uri) as conn:
        conn.execute("create schema marts")
    data = payload(TestClient(create_app(uri, role=None)), "status")

    assert {h["text"] for h in data["headlines"]} == {"Статуса ещё нет"}
    assert all(h["error"] is None for h in data["headlines"])
    assert {p["state"] for p in data["panels"]} == {"empty"}
    assert panel(data, "freshness")["message"] == "Статуса ещё нет"
    # a mart that is missing on a page without an "empty" text is an error the panel shows
    profit = payload(TestClient(create_app(uri, role=None)), "profitability")
    assert {p["state"] for p in profit["panels"]} == {"error"}
    assert "customer_profitability" in panel(profit, "top_customers")["error"]


def test_status_view_on_a_fresh_warehouse_is_empty(make_database):
    uri = make_database("cwdash_view")
    with psycopg.connect(uri) as conn:
        conn.execute("create schema marts")
        create_status_view(conn, "marts")
        assert conn.execute("select count(*) from marts.data_status").fetchone() == (0,)


def test_languages_and_currency(published, bi_role, client, monkeypatch):
    en = payload(client, "profitability", "en")
    assert en["title"] == "Profitability" and headline(en, "total_profit")["label"] == "Profit"
    assert headline(en, "loss_making_share")["text"] == "50.0%"
    assert payload(client, "profitability", "de")["lang"] == "ru"  # unknown language: the default

    monkeypatch.setenv("CW_DASHBOARD_LANG", "en")
    monkeypatch.setenv("CW_CURRENCY", "usd")
    data = payload(TestClient(create_app(published[0], role=bi_role)), "profitability", lang=None)
    assert data["lang"] == "en" and headline(data, "revenue")["text"] == f"1{NBSP}463{NBSP}000{NBSP}$"
    html = TestClient(create_app(published[0], lang="ru", role=bi_role)).get("/pages/churn").text
    assert '<html lang="ru">' in html and "Отток" in html


def test_reads_through_bi_reader_only(published, bi_role, tmp_path, monkeypatch):
    (tmp_path / "probe.yml").write_text(
        "id: probe\ntitle: Probe\n"
        "headlines:\n  - {id: publish_log, label: x, sql: select count(*) from ops.publish_log}\n"
        "panels:\n  - {id: emails, title: x, sql: select email from marts.customer_360, chart: {type: table}}\n"
        "  - {id: masked, title: x, sql: select count(*) as n from marts.customer_360_deidentified, "
        "chart: {type: table}}\n", encoding="utf-8")
    as_bi = payload(TestClient(create_app(published[0], role=bi_role, pages_dir=tmp_path)), "probe")
    assert "permission denied" in headline(as_bi, "publish_log")["error"]
    assert "permission denied" in panel(as_bi, "emails")["error"]
    assert panel(as_bi, "masked")["state"] == "ok"

    as_owner = payload(TestClient(create_app(published[0], role=None, pages_dir=tmp_path)), "probe")
    assert panel(as_owner, "emails")["state"] == "ok"  # so it was the role that refused

    monkeypatch.setenv("CW_ROLE_PREFIX", bi_role.removesuffix("bi_reader"))
    assert payload(TestClient(create_app(published[0])), "status")["reading_as"] == bi_role  # auto: SET ROLE
    monkeypatch.setenv("CW_ROLE_PREFIX", "cwd_missing_")
    reading = payload(TestClient(create_app(published[0])), "status")["reading_as"]
    assert reading != bi_role and not reading.endswith("bi_reader")  # no such role yet: the user itself


def test_html_pages_navigation_and_errors(client):
    page = client.get("/pages/profitability", params={"lang": "en"})
    assert page.status_code == 200
    assert re.search(r'data-headline="revenue"[^>]*>\s*<div class="kpi-value">1\xa0463\xa0000\xa0₽<', page.text)
    for pid in load_pages():
        assert f'href="/pages/{pid}?lang=en"' in page.text
    assert 'id="page-data"' in page.text and "/static/echarts.min.js" in page.text
    assert client.get("/pages/nope").status_code == 404
    first = client.get("/", params={"lang": "en"}, follow_redirects=False)
    assert first.status_code == 307 and first.headers["location"] == "/pages/profitability?lang=en"
    assert client.get("/static/echarts.min.js").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/api/pages", params={"lang": "en"}).json()[0] == {"id": "profitability",
                                                                         "title": "Profitability"}


def test_entry_point_serves_and_prints_the_url(published, bi_role):
    port = free_port()
    env = {**os.environ, "CW_NO_AIRFLOW_LOOKUP": "1", "CW_ROLE_PREFIX": bi_role.removesuffix("bi_reader")}
    proc = subprocess.Popen([sys.executable, "-m", "customer_warehouse.serving", "--port", str(port),
                             "--dsn", published[0]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)
    try:
        line = proc.stdout.readline()
        assert f"http://localhost:{port}/" in line
        for _ in range(100):
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert response.json() == {"status": "ok", "reading_as": bi_role}
    finally:
        proc.terminate()
        proc.wait(10)
