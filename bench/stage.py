"""One stage of the nightly in this process, for the bench to measure: ``python -m bench.stage``.

    extract --source S --date D      every unit of one source (as the DAG's mapped tasks do)
    transform --date D               dbt build, churn fit, dbt build (pipeline.transform)
    gate --date D                    the Great Expectations gate (pipeline.quality_gate)
    publish --date D --gate FILE     the swap into marts (pipeline.publish)
    churn_fit --date D               the churn fit alone (between the per-model dbt runs)
    dbt --date D --dbt-args 'ARGS'   one dbt invocation, as one cosmos task would make it

The warehouse and the sources come from ``AIRFLOW_CONN_*`` set by the bench. The stage's result
is written as JSON to ``--out``; the exit code is 0 only when the stage succeeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any


def _extract(args) -> dict[str, Any]:
    from customer_warehouse import pipeline

    units = pipeline.list_units(args.source)
    runs = [pipeline.extract_load(args.source, unit, args.date) for unit in units]
    return {"units": units, "rows_loaded": sum(r.get("rows_loaded", 0) for r in runs),
            "rows_quarantined": sum(r.get("rows_quarantined", 0) for r in runs),
            "batches": sum(len(r.get("batches", [])) for r in runs)}


def _transform(args) -> dict[str, Any]:
    from customer_warehouse import pipeline

    out = pipeline.transform(args.date)
    nodes = out.get("results") or []
    # where the build's time goes: the slowest models and tests, to tune by
    slowest = sorted(nodes, key=lambda n: n.get("seconds") or 0, reverse=True)[:15]
    return {"timings": out.get("timings"), "nodes": len(nodes),
            "slowest_nodes": [{"node": n["unique_id"], "seconds": n["seconds"]} for n in slowest]}


def _gate(args) -> dict[str, Any]:
    from customer_warehouse import pipeline

    return pipeline.quality_gate(args.date)


def _publish(args) -> dict[str, Any]:
    from customer_warehouse import pipeline

    gate = json.loads(Path(args.gate).read_text(encoding="utf-8")) if args.gate else None
    return pipeline.publish(args.date, gate)


def _churn_fit(args) -> dict[str, Any]:
    from customer_warehouse import warehouse
    from customer_warehouse.transform import churn_model

    dsn = warehouse.export_env()
    with warehouse.connect(dsn=dsn) as conn:
        params = churn_model.fit_and_store(conn, args.date, "week", "bgnbd")
    return {"fitted": params is not None}


def _dbt(args) -> dict[str, Any]:
    from customer_warehouse import warehouse
    from customer_warehouse.transform import dbt

    command, *rest = args.dbt_args.split()
    out = dbt.run_dbt(warehouse.export_env(), command, rest, variables=dbt.dbt_vars(args.date))
    failed = [n for n in out["results"] if n["status"].lower() in ("error", "fail", "runtime error")]
    if not out["success"] or failed or not out["results"]:
        raise RuntimeError(f"dbt {command} {' '.join(rest)} failed: {failed[:3] or out['error']}")
    return {"nodes": len(out["results"])}


STAGES = {"extract": _extract, "transform": _transform, "gate": _gate, "publish": _publish,
          "churn_fit": _churn_fit, "dbt": _dbt}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stage")
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--date", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--source")
    parser.add_argument("--gate", help="gate result JSON (publish)")
    parser.add_argument("--out", help="write the stage's result here as JSON")
    parser.add_argument("--dbt-args", default="", help="dbt command and arguments, one string (dbt stage)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        result: dict[str, Any] = {"ok": True, **STAGES[args.stage](args)}
        code = 0
    except Exception as exc:  # the bench records the failure and goes on with what it can measure
        traceback.print_exc()
        result, code = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}, 1
    if args.out:
        Path(args.out).write_text(json.dumps(result, default=str, ensure_ascii=False), encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
