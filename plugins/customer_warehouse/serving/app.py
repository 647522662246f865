"""The dashboard server: FastAPI pages rendered from the YAML definitions, ECharts in the browser.

``GET /pages/<id>?lang=ru|en`` renders a page: headline numbers and tables are formatted on the
server, the chart data travels inside the page as JSON and ``static/app.js`` draws it with the
vendored Apache ECharts. ``GET /api/pages/<id>`` returns the same payload as JSON (for tests and
other tools); ``GET /api/pages`` lists the pages; ``GET /healthz`` checks the database.

Run with ``python -m customer_warehouse.serving`` or
``uvicorn customer_warehouse.serving.app:create_app --factory``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from . import db
from .formatting import LANGS, default_currency, default_lang, default_timezone, format_value
from .pages import Headline, Page, Panel, load_labels, load_pages

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
STATIC = HERE / "static"
CATEGORY_FORMATS = ("text", "label", "date", "datetime")


@dataclass(frozen=True)
class Settings:
    reader: db.ReaderConfig
    lang: str
    currency: str
    timezone: str
    pages_dir: Path | None


def create_app(dsn: Any = None, lang: str | None = None, *, role: str | None = db.AUTO,
               currency: str | None = None, timezone: str | None = None,
               pages_dir: str | Path | None = None) -> FastAPI:
    """The dashboard app. ``dsn`` defaults to ``bi_reader_default`` or the warehouse (see
    :mod:`.db`); ``role`` is the role to SET (default: ``bi_reader`` when it exists; None: none);
    ``lang`` defaults to ``CW_DASHBOARD_LANG`` (ru), ``currency`` to ``CW_CURRENCY`` (RUB)."""
    settings = Settings(
        reader=db.resolve_reader(dsn, role),
        lang=lang if lang in LANGS else default_lang(),
        currency=(currency or default_currency()).upper(),
        timezone=timezone or default_timezone(),
        pages_dir=Path(pages_dir) if pages_dir else None,
    )
    pages = load_pages(settings.pages_dir)  # fail at start-up on a broken definition
    log.info("dashboard reads %s via %s; pages %s", settings.reader.redacted(), settings.reader.source, list(pages))
    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))

    app = FastAPI(title="Customer warehouse dashboard", docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def chosen(lang_param: str | None) -> str:
        return lang_param if lang_param in LANGS else settings.lang

    def find(page_id: str) -> Page:
        if page_id not in pages:
            raise HTTPException(404, f"no page {page_id!r}; pages: {', '.join(pages)}")
        return pages[page_id]

    @app.get("/", include_in_schema=False)
    def index(lang: str | None = Query(None)) -> RedirectResponse:
        first = next(iter(pages))
        return RedirectResponse(f"/pages/{first}?lang={chosen(lang)}", status_code=307)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            with db.reader(settings.reader) as (conn, as_whom):
                conn.execute("select 1")
            return JSONResponse({"status": "ok", "reading_as": as_whom})
        except Exception as err:
            return JSONResponse({"status": "error", "error": db._first_line(err)}, status_code=503)

    @app.get("/api/pages")
    def list_pages(lang: str | None = Query(None)) -> list[dict[str, str]]:
        return [{"id": p.id, "title": _t(p.title, chosen(lang), p.id)} for p in pages.values()]

    @app.get("/api/pages/{page_id}")
    def page_api(page_id: str, lang: str | None = Query(None)) -> JSONResponse:
        return JSONResponse(build_payload(find(page_id), settings, chosen(lang)))

    @app.get("/pages/{page_id}", response_class=HTMLResponse)
    def page_html(page_id: str, request: Request, lang: str | None = Query(None)) -> HTMLResponse:
        page, lang_now = find(page_id), chosen(lang)
        payload = build_payload(page, settings, lang_now)
        html = templates.get_template("page.html").render(
            page=payload, lang=lang_now, langs=LANGS, ui=_ui(settings, lang_now),
            nav=[{"id": p.id, "title": _t(p.title, lang_now, p.id)} for p in pages.values()],
            payload_json=json.dumps(payload, ensure_ascii=False).replace("</", "<\\/"),
        )
        return HTMLResponse(html)

    return app


# -- payload -----------------------------------------------------------------------------------------
def _t(text: dict[str, str], lang: str, fallback: str = "") -> str:
    return text.get(lang) or text.get("en") or text.get("ru") or fallback


def _ui(settings: Settings, lang: str) -> dict[str, str]:
    words = load_labels(settings.pages_dir)["ui"]
    return {key: _t(value, lang, key) for key, value in words.items()}


def build_payload(page: Page, settings: Settings, lang: str) -> dict[str, Any]:
    """Everything a page shows, formatted for ``lang``: what the API returns and the HTML embeds."""
    labels = load_labels(settings.pages_dir)["values"]
    ui = _ui(settings, lang)
    fmt = _formatter(settings, lang, labels)
    with db.reader(settings.reader) as (conn, as_whom):
        headlines = [_headline(h, db.run(conn, h.sql), lang, fmt, ui) for h in page.headlines]
        panels = [_panel(p, db.run(conn, p.sql), lang, fmt, ui) for p in page.panels]
    return {
        "id": page.id,
        "title": _t(page.title, lang, page.id),
        "description": _t(page.description, lang),
        "lang": lang,
        "currency": settings.currency,
        "reading_as": as_whom,
        "connection": settings.reader.source,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "headlines": headlines,
        "panels": panels,
    }


def _formatter(settings: Settings, lang: str, labels: dict):
    def fmt(value: Any, kind: str) -> str:
        return format_value(value, kind, lang, currency=settings.currency, labels=labels, tz=settings.timezone)
    return fmt


def _headline(h: Headline, result: db.QueryResult, lang: str, fmt, ui: dict[str, str]) -> dict[str, Any]:
    value = result.rows[0][0] if result.rows and result.rows[0] else None
    out = {"id": h.id, "label": _t(h.text, lang, h.id), "format": h.format, "value": db.plain(value),
           "text": fmt(value, h.format), "error": None}
    if result.error and not (result.missing and h.empty):
        out["error"] = result.error
        out["text"] = ui.get("unavailable", "n/a")
    elif value is None and h.empty:
        out["text"] = _t(h.empty, lang)
    return out


def _panel(p: Panel, result: db.QueryResult, lang: str, fmt, ui: dict[str, str]) -> dict[str, Any]:
    columns = [{"name": c, "label": p.column(c).label(lang), "format": p.column(c).format} for c in result.columns]
    out: dict[str, Any] = {
        "id": p.id, "title": _t(p.title, lang, p.id), "note": _t(p.note, lang), "type": p.type,
        "chart": p.chart, "wide": p.wide or p.type == "table", "columns": columns,
        "rows": [[db.plain(v) for v in row] for row in result.rows],
        "text": [[fmt(v, col["format"]) for v, col in zip(row, columns, strict=True)] for row in result.rows],
        "points": len(result.rows), "error": None, "message": "",
    }
    if result.error and not (result.missing and p.empty):
        out.update(state="error", error=result.error, message=f"{ui.get('unavailable', 'n/a')}: {result.error}")
        return out
    if not result.rows:
        out.update(state="empty", message=_t(p.empty, lang) or ui.get("no_data", "no data"))
        return out
    missing = [c for c in p.data_columns if c not in result.columns]
    if missing:
        out.update(state="error", error=f"columns {missing} not in the query result {result.columns}",
                   message=f"{ui.get('unavailable', 'n/a')}: {', '.join(missing)}")
        return out
    out["state"] = "ok"
    out["category_axis"] = p.type != "table" and p.column(p.chart["x"]).format in CATEGORY_FORMATS
    return out
