"""Formatting rules and page-definition checks: no database, milliseconds."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from customer_warehouse.serving import formatting as f
from customer_warehouse.serving.pages import PageError, load_labels, load_page, load_pages

NBSP = "\u00a0"


def test_money_is_grouped_whole_units_of_the_currency():
    assert f.money(1234567, "ru") == f"1{NBSP}234{NBSP}567{NBSP}₽"
    assert f.money(Decimal("999.5"), "en") == f"1{NBSP}000{NBSP}₽"
    assert f.money(Decimal("-500.50"), "ru") == f"\u2212501{NBSP}₽"
    assert f.money(12, "ru", "usd") == f"12{NBSP}$" and f.money(5, "ru", "CHF") == f"5{NBSP}CHF"
    assert f.money(None, "ru") == "—"


def test_numbers_shares_and_dates_follow_the_language():
    assert f.percent(Decimal("0.4554"), "ru") == f"45,5{NBSP}%" and f.percent(0.4554, "en") == "45.5%"
    assert f.number(Decimal("1234.5"), "en", 2) == f"1{NBSP}234.50"
    assert f.smart_number(Decimal("7.00"), "ru") == "7" and f.smart_number(0.25, "ru") == "0,25"
    assert f.date(dt.date(2026, 11, 20), "ru") == "20.11.2026" and f.date("2026-11-20", "en") == "2026-11-20"
    moment = dt.datetime(2026, 11, 20, 0, 15, tzinfo=dt.UTC)
    assert f.datetime(moment, "ru", "Europe/Moscow") == "20.11.2026 03:15"
    assert f.hours(Decimal("30.04"), "ru") == f"30,0{NBSP}ч"


def test_category_labels_translate_and_fall_back_to_the_value():
    labels = load_labels()["values"]
    assert f.label("home_espresso", "ru", labels) == "Эспрессо дома как хобби"
    assert f.label("home_espresso", "en", labels) == "Café-quality espresso at home"
    assert f.label("brand_new_job", "ru", labels) == "brand_new_job"
    assert f.label(None, "en", labels) == "not set"


def test_shipped_pages_load_in_menu_order_with_both_languages():
    pages = load_pages()
    assert list(pages) == ["profitability", "jobs", "churn", "episodic", "status"]
    for page in pages.values():
        assert set(page.title) == {"ru", "en"}
        for item in [*page.headlines, *page.panels]:
            text = item.text if hasattr(item, "text") else item.title
            assert set(text) == {"ru", "en"}, (page.id, item.id)
            assert "marts." in item.sql, (page.id, item.id)


@pytest.mark.parametrize(("snippet", "message"), [
    ("headlines:\n  - {id: a, label: {ru: Клиентов, 6 мес., en: x}, sql: select 1}", "expected text"),
    ("headlines:\n  - {id: a, label: x, format: euros, sql: select 1}", "unknown format"),
    ("panels:\n  - {id: p, title: x, chart: {type: table}}", "sql is missing"),
    ("panels:\n  - {id: p, title: x, sql: select 1, chart: {type: line, x: a}}", "needs x and y"),
    ("panels:\n  - {id: p, title: x, sql: select 1, chart: {type: radar}}", "chart.type"),
    ("headlines:\n  - {id: a, label: x, sql: select 1}\npanels:\n  - {id: a, title: x, sql: select 1, "
     "chart: {type: table}}", "duplicate"),
])
def test_malformed_definitions_are_refused_with_the_place(tmp_path, snippet, message):
    path = tmp_path / "broken.yml"
    path.write_text(f"id: broken\ntitle: Broken\n{snippet}\n", encoding="utf-8")
    with pytest.raises(PageError, match=message) as err:
        load_page(path)
    assert "broken.yml" in str(err.value)
