"""What the gate found: one :class:`CheckResult` per check, gathered in a :class:`GateResult`.

The result travels between Airflow tasks as a plain dict (``as_dict``/``from_dict``), is stored
in ``ops.quality_results`` for the dashboard's data-status page, and renders a short summary
that says table, check, observed vs expected — the text an alert and a failed publish carry.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from .config import BLOCK, WARN

PASSED, FAILED, SKIPPED, ERROR = "passed", "failed", "skipped", "error"

OPS_DDL = """
create schema if not exists ops;
create table if not exists ops.quality_results (
    run_id uuid not null,
    run_date date,
    checked_at timestamptz not null default now(),
    check_id text not null,
    schema_name text not null,
    table_name text not null,
    check_name text not null,
    check_kind text not null,
    severity text not null,
    status text not null,
    observed text,
    expected text,
    details jsonb not null default '{}'::jsonb,
    primary key (run_id, check_id)
);
create index if not exists quality_results_date_idx on ops.quality_results (run_date, checked_at);
-- raw batches a passing gate has checked: the nightly gate reads only rows of other batches
create table if not exists ops.quality_batches (
    batch_id uuid primary key,
    run_id uuid not null,
    run_date date,
    mode text not null,
    accepted_at timestamptz not null default now()
);
"""


@dataclass
class CheckResult:
    check_id: str
    schema: str
    table: str
    check: str
    kind: str
    severity: str
    status: str
    observed: str = ""
    expected: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.severity == BLOCK and self.status in (FAILED, ERROR)

    @property
    def warning(self) -> bool:
        return self.severity == WARN and self.status in (FAILED, ERROR)

    def line(self) -> str:
        return (f"[{self.severity}] {self.schema}.{self.table} · {self.check}: {self.status} — "
                f"observed {self.observed}; expected {self.expected}")


@dataclass
class GateResult:
    run_id: str
    run_date: str | None
    checks: list[CheckResult]
    docs_index: str | None = None
    seconds: float = 0.0
    schemas: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no blocking check failed: the build may be published."""
        return not self.blocking

    @property
    def blocking(self) -> list[CheckResult]:
        return [c for c in self.checks if c.blocking]

    @property
    def warnings(self) -> list[CheckResult]:
        return [c for c in self.checks if c.warning]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in (PASSED, FAILED, ERROR, SKIPPED)}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        out["blocking"] = len(self.blocking)
        out["warnings"] = len(self.warnings)
        return out

    def summary(self, limit: int = 20) -> str:
        counts = self.counts()
        head = ("PASSED" if self.passed else "BLOCKED") + (
            f": {counts[PASSED]} passed, {counts[FAILED]} failed, {counts[ERROR]} errors, "
            f"{counts[SKIPPED]} skipped; {counts['blocking']} blocking, {counts['warnings']} warnings"
        )
        notable = self.blocking + self.warnings
        lines = [head, *(c.line() for c in notable[:limit])]
        if len(notable) > limit:
            lines.append(f"… and {len(notable) - limit} more (see ops.quality_results run {self.run_id})")
        if self.docs_index:
            lines.append(f"Data Docs: {self.docs_index}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id, "run_date": self.run_date, "passed": self.passed,
            "counts": self.counts(), "docs_index": self.docs_index, "seconds": self.seconds,
            "schemas": self.schemas, "timings": self.timings, "summary": self.summary(),
            "checks": [asdict(c) for c in self.checks],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GateResult:
        return cls(data["run_id"], data.get("run_date"), [CheckResult(**c) for c in data.get("checks", [])],
                   data.get("docs_index"), data.get("seconds", 0.0), list(data.get("schemas", [])),
                   dict(data.get("timings") or {}))

    @classmethod
    def new(cls, run_date: dt.date | str | None) -> GateResult:
        return cls(str(uuid.uuid4()), str(run_date) if run_date else None, [])


def record(conn, result: GateResult) -> None:
    """Store every check's outcome (idempotent per run) for the dashboard's data-status view."""
    with conn.transaction():
        conn.execute(OPS_DDL)
        conn.execute("delete from ops.quality_results where run_id = %s", (result.run_id,))
        with conn.cursor() as cur:
            cur.executemany(
                "insert into ops.quality_results (run_id, run_date, check_id, schema_name, table_name, check_name, "
                "check_kind, severity, status, observed, expected, details) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                [(result.run_id, result.run_date, c.check_id, c.schema, c.table, c.check, c.kind, c.severity,
                  c.status, c.observed, c.expected, json.dumps(c.details, default=str)) for c in result.checks],
            )


def accept_batches(conn, result: GateResult, batches: dict[str, str]) -> int:
    """Remember the raw batches this passing run checked (``batch_id`` → scope mode), so the next
    nightly reads only rows of other batches. Returns how many were new."""
    if not batches:
        return 0
    with conn.transaction():
        conn.execute(OPS_DDL)
        cur = conn.execute(
            "insert into ops.quality_batches (batch_id, run_id, run_date, mode) "
            "select b, %s, %s, m from unnest(%s::uuid[], %s::text[]) as u(b, m) on conflict (batch_id) do nothing",
            (result.run_id, result.run_date, list(batches), list(batches.values())))
        return cur.rowcount
