"""Run the dbt project in-process (dbt's programmatic ``dbtRunner``) and the churn fit between.

``build_all`` is what the DAG and the CLI call:

1. ``dbt build`` of everything except the models that need the churn parameters
   (``--exclude tag:churn_scored+``): seeds, staging, intermediate, snapshots, most marts, tests;
2. the BG/NBD fit on ``int.int_customer_purchase_summary`` → ``marts_build.churn_model``;
3. ``dbt build --select tag:churn_scored+``: churn scores and everything built on them
   (customer_churn, jtbd_segments, customer_360) with their tests.

dbt's target and log folders go under ``.artifacts/dbt/<database>`` so that concurrent runs
against different databases (tests, the demo) never share a partial-parse manifest.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..paths import dbt_project_dir, state_dir
from ..warehouse import WarehouseDSN, connect

log = logging.getLogger(__name__)

CHURN_TAG = "churn_scored"


class DbtBuildError(RuntimeError):
    """dbt reported errors or failing tests; ``summary`` holds the per-node results."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


@contextmanager
def _environment(dsn: WarehouseDSN):
    """Put the warehouse settings where profiles.yml's env_var() reads them, then restore.

    PGOPTIONS turns PostgreSQL's JIT off for dbt's sessions: compiling the wide CTE queries of
    the models takes seconds while running them takes milliseconds.
    """
    env = {**dsn.dbt_env(), "PGOPTIONS": f"{os.environ.get('PGOPTIONS', '')} -c jit=off".strip()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _paths(dsn: WarehouseDSN, artifacts_dir: Path | None) -> tuple[Path, Path]:
    base = Path(artifacts_dir) if artifacts_dir else state_dir(".artifacts") / "dbt" / dsn.dbname
    return base / "target", base / "logs"


def dbt_vars(run_date: dt.date, time_unit: str = "week", variant: str = "bgnbd",
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"run_date": run_date.isoformat(), "churn_time_unit": time_unit, "churn_model_variant": variant,
            **(extra or {})}


def run_dbt(dsn: WarehouseDSN, command: str, args: list[str] | None = None, *,
            variables: dict[str, Any] | None = None, artifacts_dir: Path | None = None) -> dict[str, Any]:
    """One dbt command (``build``, ``run``, ``test``, ``docs generate``…); returns a summary dict.

    ``artifacts_dir`` holds dbt's target/ and logs/ (default ``.artifacts/dbt/<database>``).
    """
    from dbt.cli.main import dbtRunner

    project = dbt_project_dir()
    target_path, log_path = _paths(dsn, artifacts_dir)
    cli = [*command.split(), "--project-dir", str(project), "--profiles-dir", str(project),
           "--target-path", str(target_path), "--log-path", str(log_path), *(args or [])]
    if variables:
        cli += ["--vars", json.dumps(variables)]
    started = time.monotonic()
    with _environment(dsn):
        result = dbtRunner().invoke(cli)
    summary = {
        "command": command,
        "args": args or [],
        "success": bool(result.success),
        "seconds": round(time.monotonic() - started, 2),
        "results": _node_results(result.result),
        "error": str(result.exception) if result.exception else None,
    }
    log.info("dbt %s %s: success=%s in %.1fs", command, " ".join(args or []), summary["success"], summary["seconds"])
    return summary


def _node_results(run_result: Any) -> list[dict[str, Any]]:
    nodes = []
    for item in getattr(run_result, "results", None) or []:
        node = getattr(item, "node", None)
        nodes.append({
            "unique_id": getattr(node, "unique_id", None),
            "status": str(getattr(item, "status", "")),
            "seconds": round(float(getattr(item, "execution_time", 0) or 0), 3),
            "message": getattr(item, "message", None),
            "failures": getattr(item, "failures", None),
        })
    return nodes


def _failed(summary: dict[str, Any]) -> list[str]:
    bad = {"error", "fail", "runtime error"}
    return [f"{n['unique_id']}: {n['status']} {n['message'] or ''}".strip()
            for n in summary["results"] if n["status"].lower() in bad]


def run_build(dsn: WarehouseDSN, run_date: dt.date, *, select: str | None = None, exclude: str | None = None,
              full_refresh: bool = False, time_unit: str = "week", variant: str = "bgnbd",
              artifacts_dir: Path | None = None, test_scope: str = "unaudited") -> dict[str, Any]:
    """``dbt build`` for a node selection; raises DbtBuildError unless everything passed.

    ``test_scope``: ``unaudited`` (tests on the large facts read tonight's batches only) or ``all``."""
    args: list[str] = []
    if select:
        args += ["--select", select]
    if exclude:
        args += ["--exclude", exclude]
    if full_refresh:
        args.append("--full-refresh")
    summary = run_dbt(dsn, "build", args, variables=dbt_vars(run_date, time_unit, variant, {"dbt_test_scope": test_scope}),
                      artifacts_dir=artifacts_dir)
    failed = _failed(summary)
    if not summary["success"] or failed:
        raise DbtBuildError(
            f"dbt build {' '.join(args)} failed: " + ("; ".join(failed[:20]) or summary["error"] or "see dbt log"),
            summary,
        )
    return summary


def build_all(dsn: WarehouseDSN, run_date: dt.date, full_refresh: bool = False,
              time_unit: str = "week", artifacts_dir: Path | None = None,
              variant: str = "bgnbd", test_scope: str = "unaudited") -> dict[str, Any]:
    """The whole transformation for one run date: dbt phase 1, churn fit, dbt phase 2.

    ``variant`` is the churn model: ``bgnbd`` (default; Fader–Hardie–Lee 2005, whose parameters on
    CDNOW are the published ones) or ``mbgnbd`` (modified BG/NBD, where one-time buyers may have
    dropped out too). Churn risk is ranked by ``churn_probability`` (no purchase within the churn
    horizon), which orders one-time buyers by their silence even though BG/NBD gives them P(alive) = 1.
    """
    from . import churn_model

    timings: dict[str, float] = {}
    started = time.monotonic()
    first = run_build(dsn, run_date, exclude=f"tag:{CHURN_TAG}+", full_refresh=full_refresh,
                      time_unit=time_unit, variant=variant, artifacts_dir=artifacts_dir, test_scope=test_scope)
    timings["dbt_base"] = first["seconds"]

    t0 = time.monotonic()
    with connect(dsn=dsn) as conn:
        params = churn_model.fit_and_store(conn, run_date, time_unit, variant)
    timings["churn_fit"] = round(time.monotonic() - t0, 2)

    second = run_build(dsn, run_date, select=f"tag:{CHURN_TAG}+", full_refresh=full_refresh,
                       time_unit=time_unit, variant=variant, artifacts_dir=artifacts_dir, test_scope=test_scope)
    timings["dbt_churn_scored"] = second["seconds"]
    timings["total"] = round(time.monotonic() - started, 2)
    return {
        "run_date": run_date.isoformat(),
        "timings": timings,
        "churn_model": params.as_dict() if params else None,
        "results": first["results"] + second["results"],
    }
