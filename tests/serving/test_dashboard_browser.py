"""Every dashboard page in a real headless Chromium: no JS errors, every chart drawn with data,
headline numbers as SQL computes them, both languages; full-page screenshots are kept in
``.artifacts/screenshots/`` for people to look at. Skips (with the reason) when no Chromium is
installed: ``plugins/customer_warehouse/serving/install_browser.sh`` installs Debian's."""

from __future__ import annotations

import psycopg
import pytest
from cdp_browser import Chromium, find_chromium
from customer_warehouse.emulators.server import running
from customer_warehouse.paths import state_dir
from customer_warehouse.serving import create_app, formatting
from customer_warehouse.serving.pages import load_pages

CHROMIUM = find_chromium()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("dashboard_browser"),
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on PATH (set CW_CHROMIUM or run "
                                                "plugins/customer_warehouse/serving/install_browser.sh)"),
]
STATE = "document.body.dataset.renderState !== 'loading' && document.body.dataset.renderState"
PAGE_FACTS = """JSON.stringify({
  dashboard: window.cwDashboard,
  charts: Array.from(document.querySelectorAll('.chart')).map(e => [e.id, e.dataset.rendered, Number(e.dataset.points),
                                                                    e.querySelectorAll('canvas').length]),
  headlines: Object.fromEntries(Array.from(document.querySelectorAll('[data-headline]'))
      .map(e => [e.dataset.headline, e.querySelector('.kpi-value').textContent.trim()])),
  panels: Array.from(document.querySelectorAll('[data-panel]')).map(e => [e.dataset.panel, e.dataset.state]),
  title: document.querySelector('h1').textContent,
})"""
# headline id → SQL computing it independently of the page definition, and its format
HEADLINE_SQL = {
    "profitability": ("total_profit", "select sum(profit) from marts.customer_profitability", "money"),
    "jobs": ("jobs_served", "select count(distinct job_id) from marts.customer_jobs where job_id <> 'unassigned'",
             "integer"),
    "churn": ("retention_budget", "select sum(retention_budget) from marts.customer_churn", "money"),
    "episodic": ("buyers_12m", "select count(*) from marts.customer_episodes where purchases_12m > 0", "integer"),
    "status": ("failed_checks", "select count(*) from ops.quality_results where status = 'failed'", "integer"),
}


@pytest.fixture(scope="module")
def browser():
    with Chromium(CHROMIUM) as chromium:
        yield chromium


@pytest.fixture(scope="module")
def site(published, bi_role):
    with running(create_app(published[0], role=bi_role)) as base_url:
        yield base_url


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_every_page_renders_its_charts_without_errors(browser, site, published, lang):
    import json

    shots = state_dir(".artifacts") / "screenshots"
    tab = browser.new_tab()
    for page_id in load_pages():
        tab.navigate(f"{site}/pages/{page_id}?lang={lang}")
        state = tab.wait_for(STATE)
        facts = json.loads(tab.evaluate(PAGE_FACTS))
        tab.screenshot(shots / f"{page_id}-{lang}.png")

        assert tab.errors() == [], page_id
        assert state == "ready", (page_id, facts["dashboard"])
        assert facts["charts"], page_id
        for chart_id, rendered, points, canvases in facts["charts"]:
            assert (chart_id, rendered, canvases >= 1) == (chart_id, "true", True)
            assert points > 0, chart_id
        assert {s for _, s in facts["panels"]} == {"ok"}, (page_id, facts["panels"])

        hid, query, fmt = HEADLINE_SQL[page_id]
        with psycopg.connect(published[0]) as conn:
            (expected,), = conn.execute(query).fetchall()
        assert facts["headlines"][hid] == formatting.format_value(expected, fmt, lang), (page_id, hid)
    assert (shots / f"status-{lang}.png").stat().st_size > 10_000


def test_language_switch_link_and_headline_in_english(browser, site, published):
    tab = browser.new_tab()
    tab.navigate(f"{site}/pages/profitability")
    tab.wait_for(STATE)
    assert tab.evaluate("document.querySelector('h1').textContent") == "Прибыльность"

    tab.navigate(tab.evaluate("document.querySelector('nav.langs a[href=\"?lang=en\"]').href"))
    tab.wait_for(STATE)
    assert tab.evaluate("document.querySelector('h1').textContent") == "Profitability"
    shown = tab.evaluate("document.querySelector('[data-headline=revenue] .kpi-value').textContent")
    with psycopg.connect(published[0]) as conn:
        (revenue,), = conn.execute("select sum(revenue) from marts.customer_profitability").fetchall()
    assert shown == formatting.money(revenue, "en") == "1\u00a0463\u00a0000\u00a0₽"
    assert tab.evaluate("document.querySelector('nav.pages a.current').getAttribute('href')") == \
        "/pages/profitability?lang=en"
    assert tab.errors() == []


def test_a_chart_without_points_and_a_js_error_are_reported(browser, published, bi_role, tmp_path):
    """The checks above can fail: a chart whose values are all NULL leaves the page 'empty', and an
    uncaught exception reaches the error list."""
    (tmp_path / "probe.yml").write_text(
        "id: probe\ntitle: Probe\npanels:\n"
        "  - {id: nothing, title: x, sql: 'select 1 as a, 2 as b from marts.whale_curve where false', "
        "chart: {type: bar, x: a, y: [b]}}\n"
        "  - {id: nulls, title: y, sql: 'select point, null::numeric as v from marts.whale_curve', "
        "chart: {type: line, x: point, y: [v]}}\n"
        "  - {id: curve, title: z, sql: 'select point, cumulative_profit from marts.whale_curve', "
        "chart: {type: line, x: point, y: [cumulative_profit]}}\n", encoding="utf-8")
    with running(create_app(published[0], role=bi_role, pages_dir=tmp_path)) as base_url:
        tab = browser.new_tab()
        tab.navigate(f"{base_url}/pages/probe")

        assert tab.wait_for(STATE) == "empty"
        assert tab.evaluate("JSON.stringify(window.cwDashboard.charts)") == '{"nulls":0,"curve":11}'
        assert tab.evaluate("document.querySelector('[data-panel=nothing] .message').textContent") == "Нет данных"
        assert tab.errors() == []
        tab.evaluate("setTimeout(() => { throw new Error('probe failure'); }, 0); "
                     "new Promise(done => setTimeout(done, 100))")
        tab.evaluate("1")
        assert any("probe failure" in e for e in tab.errors())
