"""Page definitions: the dashboard as code, one YAML file per page under ``pages/``.

A page has headlines (one number each) and panels (a chart or a table). Every headline and panel
is a SQL query against the published ``marts`` schema plus a presentation spec; keeping the SQL
here, next to the chart, means a renamed mart column is a one-line fix in YAML, not a code
change. ``pages/_labels.yml`` holds the interface words and the names of category values (jobs,
churn reasons, statuses…) in Russian and English. Files starting with ``_`` are not pages.

Headline::

    - id: total_profit
      label: {ru: Прибыль, en: Profit}
      format: money                    # see formatting.FORMATS
      sql: select sum(profit) from marts.customer_profitability

Panel::

    - id: whale_curve
      title: {ru: …, en: …}
      note: {ru: …, en: …}             # optional one-line explanation
      sql: select customer_share, cumulative_profit_share from marts.whale_curve order by point
      chart: {type: line, x: customer_share, y: [cumulative_profit_share], reference_line: 1}
      columns:                         # label and format per result column
        customer_share: {ru: …, en: …, format: percent}
      empty: {ru: Статуса ещё нет, en: No status yet}   # optional: no rows / missing mart is expected

Chart types: ``line``, ``bar`` (``horizontal``, ``stack``, ``y2`` for a second axis), ``pie``, ``table``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .formatting import FORMATS, LANGS

PAGES_DIR = Path(__file__).with_name("pages")
CHART_TYPES = ("line", "bar", "pie", "table")


class PageError(ValueError):
    """A page definition is malformed; the message names the file and the item."""


@dataclass(frozen=True)
class Column:
    name: str
    text: dict[str, str]
    format: str = "text"

    def label(self, lang: str) -> str:
        return self.text.get(lang) or self.text.get("en") or self.name


@dataclass(frozen=True)
class Headline:
    id: str
    text: dict[str, str]
    sql: str
    format: str = "number"
    empty: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Panel:
    id: str
    title: dict[str, str]
    sql: str
    chart: dict[str, Any]
    columns: dict[str, Column] = field(default_factory=dict)
    note: dict[str, str] = field(default_factory=dict)
    empty: dict[str, str] = field(default_factory=dict)
    wide: bool = False

    @property
    def type(self) -> str:
        return self.chart["type"]

    @property
    def data_columns(self) -> list[str]:
        """The result columns the chart plots (x first)."""
        c = self.chart
        if c["type"] == "table":
            return []
        return [c["x"], *c.get("y", []), *c.get("y2", [])]

    def column(self, name: str) -> Column:
        return self.columns.get(name) or Column(name, {})


@dataclass(frozen=True)
class Page:
    id: str
    title: dict[str, str]
    order: int
    headlines: tuple[Headline, ...]
    panels: tuple[Panel, ...]
    description: dict[str, str] = field(default_factory=dict)


def _text(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        return dict.fromkeys(LANGS, raw)
    # a stray key is usually an unquoted comma inside a YAML flow mapping
    if not isinstance(raw, dict) or not any(lang in raw for lang in LANGS) or set(raw) - set(LANGS) \
            or any(v is None for v in raw.values()):
        raise PageError(f"{where}: expected text or {{ru: …, en: …}}, got {raw!r}")
    return {k: str(v) for k, v in raw.items()}


def _format(raw: Any, where: str) -> str:
    fmt = raw or "text"
    if fmt not in FORMATS:
        raise PageError(f"{where}: unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    return fmt


def _sql(raw: Any, where: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise PageError(f"{where}: sql is missing")
    # one statement, read-only: the bi_reader role and a read-only session are the real guard
    return raw.strip().rstrip(";")


def _column(name: str, raw: Any, where: str) -> Column:
    raw = raw or {}
    if isinstance(raw, str):
        raw = {"ru": raw, "en": raw}
    fmt = _format(raw.get("format"), f"{where}.{name}")
    text = _text({k: v for k, v in raw.items() if k != "format"} or None, f"{where}.{name}")
    return Column(name, text, fmt)


def _chart(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type") not in CHART_TYPES:
        raise PageError(f"{where}: chart.type must be one of {', '.join(CHART_TYPES)}")
    chart = dict(raw)
    if chart["type"] != "table":
        if not chart.get("x") or not chart.get("y"):
            raise PageError(f"{where}: a {chart['type']} chart needs x and y")
        for key in ("y", "y2"):
            if isinstance(chart.get(key), str):
                chart[key] = [chart[key]]
    return chart


def _panel(raw: dict, where: str) -> Panel:
    pid = raw.get("id") or ""
    where = f"{where} panel {pid!r}"
    if not pid:
        raise PageError(f"{where}: id is missing")
    columns = {name: _column(name, spec, where) for name, spec in (raw.get("columns") or {}).items()}
    return Panel(id=pid, title=_text(raw.get("title"), where), sql=_sql(raw.get("sql"), where),
                 chart=_chart(raw.get("chart"), where), columns=columns, note=_text(raw.get("note"), where),
                 empty=_text(raw.get("empty"), where), wide=bool(raw.get("wide", False)))


def _headline(raw: dict, where: str) -> Headline:
    hid = raw.get("id") or ""
    where = f"{where} headline {hid!r}"
    if not hid:
        raise PageError(f"{where}: id is missing")
    return Headline(id=hid, text=_text(raw.get("label"), where), sql=_sql(raw.get("sql"), where),
                    format=_format(raw.get("format") or "number", where), empty=_text(raw.get("empty"), where))


def load_page(path: Path) -> Page:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = path.name
    pid = raw.get("id") or path.stem
    page = Page(
        id=pid,
        title=_text(raw.get("title") or pid, where),
        order=int(raw.get("order", 100)),
        description=_text(raw.get("description"), where),
        headlines=tuple(_headline(h, where) for h in raw.get("headlines") or []),
        panels=tuple(_panel(p, where) for p in raw.get("panels") or []),
    )
    ids = [h.id for h in page.headlines] + [p.id for p in page.panels]
    if len(ids) != len(set(ids)):
        raise PageError(f"{where}: duplicate headline/panel ids {sorted(i for i in ids if ids.count(i) > 1)}")
    return page


def load_pages(folder: Path | str | None = None) -> dict[str, Page]:
    """All pages of ``folder`` (default: the package's ``pages/``), in menu order."""
    folder = Path(folder) if folder else PAGES_DIR
    pages = [load_page(p) for p in sorted(folder.glob("*.yml")) if not p.name.startswith("_")]
    if not pages:
        raise PageError(f"no page definitions in {folder}")
    ids = [p.id for p in pages]
    if len(ids) != len(set(ids)):
        raise PageError(f"duplicate page ids in {folder}: {ids}")
    return {p.id: p for p in sorted(pages, key=lambda p: (p.order, p.id))}


@lru_cache(maxsize=8)
def _labels_file(path: str, mtime: float) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def load_labels(folder: Path | str | None = None) -> dict[str, Any]:
    """``{"ui": {key: {ru, en}}, "values": {value: {ru, en}}}`` from ``_labels.yml`` (the package's
    file underneath, so a custom pages folder only needs to add its own words)."""
    merged: dict[str, Any] = {"ui": {}, "values": {}}
    for candidate in dict.fromkeys([PAGES_DIR / "_labels.yml", Path(folder or PAGES_DIR) / "_labels.yml"]):
        if candidate.exists():
            data = _labels_file(str(candidate), candidate.stat().st_mtime)
            for part in ("ui", "values"):
                merged[part].update(data.get(part) or {})
    return merged
