"""The nightly pipeline as plain functions: what each DAG task (and the ``cw`` CLI) calls.

    extract_load(source, unit, day)  →  transform(day)  →  quality_gate(day)  →  publish(day)

Each step is idempotent for its day, so a retry, a re-run or a backfill gives the same result.
Heavy imports (dbt, GX, pandas) happen inside the functions, never at DAG parse time.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from typing import Any

from .connections import SOURCE_CONN_IDS, source_config

log = logging.getLogger(__name__)

DEFAULT_TZ = "Europe/Moscow"


def business_tz() -> str:
    return os.environ.get("CW_TIMEZONE", DEFAULT_TZ)


def business_day(moment: dt.datetime | dt.date | str | None, tz: str | None = None) -> dt.date:
    """The day a run loads: the calendar day, in the business time zone, of the run's logical date.

    A scheduled run's logical date is its data interval start (CronDataIntervalTimetable), so the
    run at 02:00 on the 21st loads the 20th; ``airflow dags test <dag> 2026-11-20`` loads the 20th.
    """
    from zoneinfo import ZoneInfo

    if moment is None:
        raise ValueError("a run needs a logical date or a data interval to know which day to load")
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment) if "T" in moment or " " in moment else dt.date.fromisoformat(moment)
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(ZoneInfo(tz or business_tz())).date()
    return moment


def configured_sources() -> list[str]:
    return [s for s in SOURCE_CONN_IDS if source_config(s) is not None]


def list_units(source: str) -> list[str]:
    """What to map the source's load over; empty (the source is skipped) without a connection."""
    from .sources import module

    cfg = source_config(source)
    if cfg is None:
        return []
    units = [str(u) for u in module(source).units(cfg)]
    log.info("source %s: %d unit(s): %s", source, len(units), ", ".join(units))
    return units


def extract_load(source: str, unit: str, day: dt.date, full: bool = False) -> dict[str, Any]:
    """Pull one unit of one source for ``day`` (or its whole history) into the raw layer."""
    from . import warehouse
    from .sources import Window, module

    cfg = source_config(source)
    if cfg is None:
        return {"source": source, "unit": unit, "skipped": "no connection"}
    window = Window.for_day(day, business_tz(), full=full)
    t0 = time.monotonic()
    with warehouse.connect() as conn:
        results = module(source).extract_load(cfg, unit, window, conn)
        conn.commit()
    summary = {
        "source": source,
        "unit": unit,
        "day": day.isoformat(),
        "seconds": round(time.monotonic() - t0, 2),
        "batches": [r.as_dict() for r in results],
        "rows_loaded": sum(r.rows_loaded for r in results),
        "rows_quarantined": sum(r.rows_quarantined for r in results),
        "unchanged": [r.entity for r in results if r.unchanged],
    }
    log.info("%s[%s] %s: %d rows loaded, %d quarantined in %.1fs%s", source, unit, day,
             summary["rows_loaded"], summary["rows_quarantined"], summary["seconds"],
             f"; unchanged since the last load, skipped: {', '.join(summary['unchanged'])}" if summary["unchanged"] else "")
    return summary


def transform(day: dt.date, full_refresh: bool = False) -> dict[str, Any]:
    """dbt build into the build schemas, with the churn model fitted in between. The data tests
    on the large facts read tonight's batches only, except on the gate's full-audit day and on a
    full refresh, when they check the whole history."""
    from . import warehouse
    from .transform import dbt

    dsn = warehouse.export_env()
    scope = "all" if full_refresh or full_audit_due(day) else "unaudited"
    return dbt.build_all(dsn, run_date=day, full_refresh=full_refresh, test_scope=scope)


FULL_AUDIT_WEEKDAY_ENV = "CW_GATE_FULL_AUDIT_WEEKDAY"
DEFAULT_FULL_AUDIT_WEEKDAY = 7  # Sunday's business day


def full_audit_due(day: dt.date) -> bool:
    """Whether the gate of ``day`` audits whole raw tables: on the ISO weekday set in
    ``CW_GATE_FULL_AUDIT_WEEKDAY`` (1 = Monday … 7 = Sunday, default 7; ``off`` never)."""
    value = os.environ.get(FULL_AUDIT_WEEKDAY_ENV, str(DEFAULT_FULL_AUDIT_WEEKDAY)).strip().lower()
    if value in ("", "off", "never", "none", "0"):
        return False
    if not value.isdigit() or not 1 <= int(value) <= 7:
        raise ValueError(f"{FULL_AUDIT_WEEKDAY_ENV} must be an ISO weekday 1–7 or 'off', not {value!r}")
    return day.isoweekday() == int(value)


def quality_gate(day: dt.date, full: bool = False) -> dict[str, Any]:
    """Validate raw batches and the freshly built marts (the gate never raises; publish blocks).

    Raw tables are checked on the batches no passing gate has accepted yet (tonight's), or whole
    when ``full`` or when :func:`full_audit_due` (the weekly full-history audit).
    """
    from . import warehouse
    from .quality import gate

    full = full or full_audit_due(day)
    result = gate.run_gate(warehouse.export_env(), run_date=day, full=full)
    return result if isinstance(result, dict) else result.as_dict()


def publish(day: dt.date, gate_result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Swap the validated build schema into ``marts`` in one transaction and re-apply grants."""
    from . import warehouse
    from .publish import publisher

    return publisher.publish(warehouse.export_env(), run_date=day, gate_result=gate_result)


PUBLISHED_MARTS = (
    "customer_profitability",
    "whale_curve",
    "interaction_history",
    "customer_episodes",
    "customer_jobs",
    "jtbd_segments",
    "customer_churn",
    "customer_360",
    "customer_kpis",
)
