"""Write–audit–publish: make the audited ``marts_build`` the published ``marts`` in one step.

dbt writes into ``marts_build``; the quality gate audits it; ``publish()`` then, only if no
blocking check failed, in ONE transaction: adds the de-identified columns and views and the
dashboard's ``data_status`` view, renames
``marts`` → ``marts_prev`` and ``marts_build`` → ``marts``, re-applies the grants, and records the
publication in ``ops.publish_log``. Readers therefore see yesterday's marts or today's, never a
mix, and a failure at any step rolls back to yesterday's.

``marts_prev`` stays until the next dbt build starts: its on-run-start hook
(``carry_incremental_marts``, dbt_project/macros/carry_marts.sql) moves the incremental marts
(interaction_history) into the new ``marts_build``, which then applies only what changed since
that copy instead of rebuilding millions of rows, and drops the rest. Until then the warehouse
holds one more copy of the marts.

When the gate blocked (or publishing fails) the previous ``marts`` stays untouched, the attempt
is logged with status ``blocked``/``failed``, the alert callback fires, and :class:`PublishBlocked`
is raised with a summary of what broke (table, check, observed vs expected).
Note: dropping ``marts_prev`` (``cascade``) also drops views other schemas defined on the old marts.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from psycopg import sql

from ..quality.results import OPS_DDL, GateResult, record
from . import alerts, pii, roles

log = logging.getLogger(__name__)

BUILD, PUBLISHED, PREVIOUS = "marts_build", "marts", "marts_prev"

PUBLISH_LOG_DDL = """
create schema if not exists ops;
create table if not exists ops.publish_log (
    publish_id bigint generated always as identity primary key,
    run_id uuid,
    run_date date,
    published_at timestamptz not null default now(),
    status text not null,
    gate_summary jsonb not null default '{}'::jsonb,
    row_counts jsonb not null default '{}'::jsonb,
    deidentified jsonb not null default '{}'::jsonb,
    message text
);
"""


class PublishBlocked(RuntimeError):
    """The build was not published; the message says what broke. ``marts`` is unchanged."""

    def __init__(self, message: str, gate: GateResult | None = None):
        super().__init__(message)
        self.gate = gate


def publish(dsn: Any, *, run_date: dt.date | str | None = None,
            gate_result: GateResult | Mapping[str, Any] | None = None,
            build_schema: str = BUILD, target_schema: str = PUBLISHED, role_prefix: str | None = None,
            hmac_key: str | None = None, alert: Callable[[Mapping[str, Any]], Any] | None = None) -> dict[str, Any]:
    """Publish ``build_schema`` as ``target_schema`` if the gate passed; see the module docstring.

    ``gate_result`` is a :class:`GateResult` or its ``as_dict()`` (an Airflow XCom); without one
    the gate runs first. ``alert`` defaults to :func:`alerts.notify`.
    """
    alert = alert or alerts.notify
    gate = _gate(dsn, gate_result, run_date)
    run_date = run_date or gate.run_date
    key = hmac_key if hmac_key is not None else pii.hmac_key()
    with psycopg.connect(_uri(dsn), application_name="customer_warehouse.publish") as conn:
        _ensure_ops(conn, gate)
        if not gate.passed:
            message = f"marts not published: quality gate blocked {len(gate.blocking)} check(s)\n{gate.summary()}"
            _log_attempt(conn, gate, run_date, "blocked", message)
            _alert(alert, "error", "Marts not published: quality gate blocked", message, run_date, gate)
            raise PublishBlocked(message, gate)
        try:
            outcome = _swap(conn, gate, run_date, build_schema, target_schema, role_prefix, key)
        except Exception as err:
            conn.rollback()
            message = f"marts not published: {type(err).__name__}: {err}; {target_schema} unchanged"
            _log_attempt(conn, gate, run_date, "failed", message)
            _alert(alert, "error", "Marts not published: publish failed", message, run_date, gate)
            raise PublishBlocked(message, gate) from err
    if gate.warnings:
        _alert(alert, "warning", f"Marts published with {len(gate.warnings)} warning(s)", gate.summary(),
               run_date, gate)
    log.info("published %s → %s: %s", build_schema, target_schema, outcome["row_counts"])
    return outcome


def _gate(dsn: Any, gate_result: GateResult | Mapping[str, Any] | None, run_date) -> GateResult:
    if isinstance(gate_result, GateResult):
        return gate_result
    if gate_result:
        return GateResult.from_dict(dict(gate_result))
    from ..quality.gate import run_gate

    return run_gate(dsn, run_date=run_date)


def _swap(conn, gate: GateResult, run_date, build: str, target: str, prefix: str | None,
          key: str | None) -> dict[str, Any]:
    b, t, p = sql.Identifier(build), sql.Identifier(target), sql.Identifier(f"{target}_prev")
    with conn.transaction():
        # one publisher at a time; readers keep reading the old schema until commit
        conn.execute("select pg_advisory_xact_lock(hashtext('customer_warehouse.publish'))")
        if not _schema_exists(conn, build):
            raise RuntimeError(f"build schema {build!r} does not exist (was dbt run?)")
        roles.ensure_roles(conn, prefix)
        personal = pii.deidentify(conn, build, key)
        counts = _row_counts(conn, build)
        _status_view(conn, build)
        # a spare that no build took since the last publish (its build failed before dbt ran)
        conn.execute(sql.SQL("drop schema if exists {} cascade").format(p))
        if _schema_exists(conn, target):
            conn.execute(sql.SQL("alter schema {} rename to {}").format(t, p))
            roles.withdraw_bi(conn, f"{target}_prev", prefix)
        conn.execute(sql.SQL("alter schema {} rename to {}").format(b, t))
        roles.apply_grants(conn, prefix, published=target, pii=personal)
        summary = {**gate.counts(), "warnings_list": [c.check_id for c in gate.warnings]}
        conn.execute(
            "insert into ops.publish_log (run_id, run_date, status, gate_summary, row_counts, deidentified, message) "
            "values (%s, %s, 'published', %s::jsonb, %s::jsonb, %s::jsonb, %s)",
            (gate.run_id, run_date, json.dumps(summary), json.dumps(counts), json.dumps(personal),
             gate.summary(limit=5)),
        )
    return {"status": "published", "run_id": gate.run_id, "run_date": str(run_date) if run_date else None,
            "row_counts": counts, "deidentified": personal, "warnings": [c.check_id for c in gate.warnings]}


def _status_view(conn, schema: str) -> None:
    """The dashboard's ``data_status`` view travels with the marts it describes (docs/dashboard.md)."""
    try:
        from ..serving.status import create_status_view
    except ImportError:  # a deployment without the dashboard
        return
    create_status_view(conn, schema)


def _schema_exists(conn, name: str) -> bool:
    return conn.execute("select 1 from pg_namespace where nspname = %s", (name,)).fetchone() is not None


def _row_counts(conn, schema: str) -> dict[str, int]:
    tables = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = %s and table_type = 'BASE TABLE' "
        "order by table_name", (schema,)).fetchall()]
    return {name: conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name))).fetchone()[0]
            for name in tables}


def _ensure_ops(conn, gate: GateResult) -> None:
    with conn.transaction():
        conn.execute(OPS_DDL)
        conn.execute(PUBLISH_LOG_DDL)
        stored = conn.execute("select 1 from ops.quality_results where run_id = %s limit 1", (gate.run_id,)).fetchone()
    if not stored and gate.checks:
        record(conn, gate)


def _log_attempt(conn, gate: GateResult, run_date, status: str, message: str) -> None:
    with conn.transaction():
        conn.execute(
            "insert into ops.publish_log (run_id, run_date, status, gate_summary, message) "
            "values (%s, %s, %s, %s::jsonb, %s)",
            (gate.run_id, run_date, status, json.dumps(gate.counts()), message[:10000]),
        )


def _alert(alert: Callable[[Mapping[str, Any]], Any], level: str, title: str, text: str, run_date,
           gate: GateResult) -> None:
    event = {"level": level, "title": title, "text": text, "run_date": str(run_date) if run_date else None,
             "details": {"run_id": gate.run_id, "counts": gate.counts(), "docs_index": gate.docs_index,
                         "blocking": [c.line() for c in gate.blocking][:20],
                         "warnings": [c.line() for c in gate.warnings][:20]}}
    try:
        alert(event)
    except Exception as err:  # the alert is a courtesy; the publish outcome must still surface
        log.warning("alert callback failed: %s: %s", type(err).__name__, err)


def _uri(dsn: Any) -> str:
    return dsn.uri if hasattr(dsn, "uri") else str(dsn)
