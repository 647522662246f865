"""``python -m bench --scale S --next-day-from DIR``: one more new day on a copy of a kept warehouse.

The whole bench spends most of its time building the warehouse from empty; a change to a model
that a new night rebuilds is judged by the new night alone. An earlier ``--keep-databases`` run
left its cluster in DIR with day D + 2 loaded; this mode copies DIR to ``--pgdata`` (DIR itself is
never written, so A and B of a change start from the same warehouse) and runs the nightly for
D + 3, the dataset's last day (the generator's ``--today``), every stage measured as in the
whole bench. It writes ``<results-dir>/<scale>-next-day.json`` only: the headline keys and
BENCHMARKS.md come from the whole bench.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import psycopg

from .procs import say


def _stopped_cluster(path: Path) -> Path:
    if not (path / "PG_VERSION").is_file():
        raise SystemExit(f"{path} is not a PostgreSQL data directory; give --next-day-from the --pgdata "
                         "of an earlier bench run made with --keep-databases")
    if (path / "postmaster.pid").exists():
        raise SystemExit(f"the cluster in {path} is running (postmaster.pid exists); stop it first "
                         f"(kill -INT the first line of {path / 'postmaster.pid'}) so that its copy is consistent")
    return path


def copy_cluster(source: Path, target: Path) -> float:
    """Copy a stopped cluster to ``target`` (replacing a cluster there); the seconds it took."""
    source, target = _stopped_cluster(source.resolve()), target.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise SystemExit(f"--pgdata {target} must lie apart from --next-day-from {source}: the kept cluster "
                         "is only read")
    if target.exists():
        _stopped_cluster(target)  # only ever replace a stopped cluster, never an arbitrary folder
        shutil.rmtree(target)
    started = time.monotonic()
    say(f"copying the kept cluster {source} → {target} (not timed)")
    # cp -a keeps the owner: run as root, pgserver runs PostgreSQL as its own user, who must own the copy
    subprocess.run(["cp", "-a", str(source), str(target)], check=True)
    (target / ".handle_pids.json").unlink(missing_ok=True)  # pgserver's record of the processes using the source
    return round(time.monotonic() - started, 1)


def run(args, data: Path, work: Path, db_name: str) -> dict[str, Any]:
    from .nightly import DATASET_DAYS
    from .pg import BenchServer

    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    day = args.day + dt.timedelta(days=DATASET_DAYS)
    if manifest.get("today") != day.isoformat():
        raise SystemExit(f"the dataset in {data} ends on {manifest.get('today')}, not {day}: use the dataset "
                         "and --day of the run that kept the cluster")
    pgdata = args.pgdata or args.next_day_from.parent / f"{args.next_day_from.name}-next-day"
    copy_seconds = copy_cluster(args.next_day_from, pgdata)
    server = BenchServer(tuned=not args.no_tuning, pgdata=pgdata)
    try:
        return _measure(args, day, data, work, db_name, server, copy_seconds)
    finally:
        if not args.keep_databases:  # a failed run too: the copy is as large as the kept cluster
            server.server.cleanup()
            shutil.rmtree(pgdata, ignore_errors=True)
            say(f"removed the copy {pgdata} (--keep-databases keeps it)")


def _measure(args, day: dt.date, data: Path, work: Path, db_name: str, server, copy_seconds: float) -> dict[str, Any]:
    from customer_warehouse.warehouse import WarehouseDSN

    from . import machine, nightly
    from .pg import child_env, table_rows

    admin = server.admin
    dsn = WarehouseDSN(admin.host, admin.port, admin.user, admin.password, db_name, embedded=True)
    with psycopg.connect(admin.uri, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (db_name,)).fetchone():
            raise SystemExit(f"the kept cluster has no database {db_name}; pass the --db-name of the run that kept it")
    started = time.time()
    result: dict[str, Any] = {
        "scale": args.scale, "mode": "next_day", "commit": machine.commit(),
        "started_at": dt.datetime.fromtimestamp(started, dt.UTC).isoformat(timespec="seconds"),
        "day": day.isoformat(), "kept_cluster": str(args.next_day_from.resolve()),
        "copy_seconds_untimed": copy_seconds,
        "machine": machine.describe(server.version(), server.settings), "api_quotas": args.api_quotas,
    }
    say(f"— next day {day} on the copy of {args.next_day_from} —")
    run_ = nightly.run_nightly("next_day", day, data, child_env(dsn), work, quotas=args.api_quotas)
    raw, marts = table_rows(dsn, "raw\\_%"), table_rows(dsn, "marts")
    run_["raw_rows"], run_["mart_rows"] = sum(raw.values()), sum(marts.values())
    nightly.add_rates(run_, run_["raw_rows"], run_["mart_rows"])
    result["nightly"] = run_
    result["next_day_nightly_seconds"] = run_["seconds"] if run_["ok"] else None
    result["stage_seconds"] = {s["name"]: s["seconds"] for s in run_["stages"]}
    dbt = next((s for s in run_["stages"] if s["name"] == "dbt_build"), None)
    if dbt:
        result["dbt_timings"] = dbt.get("timings")
        result["slowest_nodes"] = dbt.get("slowest_nodes")
    result["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return result


def write(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{result['scale']}-next-day.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def summary(result: dict[str, Any]) -> str:
    seconds = result["next_day_nightly_seconds"]
    lines = [f"next day {result['day']} at {result['scale']} (commit {result['commit']}): "
             + (f"{seconds:.1f}s" if seconds is not None else "FAILED (see the stages below and their logs)")]
    lines += [f"  {name:<28} {secs:8.1f}s" for name, secs in result["stage_seconds"].items()]
    for node in (result.get("slowest_nodes") or [])[:8]:
        lines.append(f"    {node['node'].split('.')[-1]:<44} {node['seconds']:7.1f}s")
    return "\n".join(lines)
