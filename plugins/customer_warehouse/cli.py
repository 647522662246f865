"""``cw``: the pipeline outside Airflow, with the same connections — for debugging and the demo.

    cw demo [--date D]                       the nightly pipeline on the demo company (make demo)
    cw run --date D [--full-refresh]         every stage in this process, no Airflow
    cw extract SOURCE --date D [--unit U] [--full]
    cw transform --date D | cw gate --date D [--full] | cw publish --date D
    cw emulators [--data DIR]                serve the demo dataset through the emulators
    cw warehouse                             print the warehouse URI (starts the embedded one)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _yesterday() -> dt.date:
    return dt.date.today() - dt.timedelta(days=1)


def cmd_run(args) -> int:
    from . import pipeline

    day = args.date
    t0 = time.monotonic()
    sources = args.sources or pipeline.configured_sources()
    for source in sources:
        for unit in pipeline.list_units(source):
            pipeline.extract_load(source, unit, day, full=args.full_refresh)
    print(f"extract & load: {time.monotonic() - t0:.1f}s", flush=True)
    t1 = time.monotonic()
    pipeline.transform(day, full_refresh=args.full_refresh)
    print(f"dbt build: {time.monotonic() - t1:.1f}s", flush=True)
    t2 = time.monotonic()
    gate = pipeline.quality_gate(day)
    print(f"quality gate: {time.monotonic() - t2:.1f}s", flush=True)
    pipeline.publish(day, gate)
    print(f"published; total {time.monotonic() - t0:.1f}s")
    return 0


def cmd_extract(args) -> int:
    from . import pipeline

    units = [args.unit] if args.unit else pipeline.list_units(args.source)
    if not units:
        print(f"source {args.source}: no connection configured; nothing to do", file=sys.stderr)
        return 1
    for unit in units:
        print(json.dumps(pipeline.extract_load(args.source, unit, args.date, full=args.full), default=str, indent=2))
    return 0


def cmd_stage(args) -> int:
    from . import pipeline

    if args.command == "transform":
        out = pipeline.transform(args.date, full_refresh=args.full_refresh)
    elif args.command == "gate":
        out = pipeline.quality_gate(args.date, full=args.full)
    else:
        out = pipeline.publish(args.date, None)
    print(json.dumps(out, default=str, indent=2))
    return 0


def cmd_emulators(args) -> int:
    from .emulators import stack
    from .quickstart import ensure_dataset

    data = args.data
    if data is None:
        data, _, _ = ensure_dataset(args.scale, args.seed, None)
    running = stack.start(data)
    for name, value in running.connections().items():
        print(f"export {name}='{value}'")
    print("# emulators running; Ctrl-C to stop", file=sys.stderr)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        running.stop()
    return 0


def cmd_warehouse(args) -> int:
    from . import warehouse

    if args.restart:
        if warehouse.get_connection(warehouse.WAREHOUSE_CONN_ID) is not None:
            print(f"--restart is for the embedded PostgreSQL; {warehouse.WAREHOUSE_CONN_ID} is configured",
                  file=sys.stderr)
            return 2
        if warehouse.embedded_running():
            warehouse.restart_embedded(warehouse.embedded_pgdata())
    print(warehouse.resolve().uri)
    return 0


def cmd_demo(args) -> int:
    from . import quickstart

    return quickstart.run(args.date.isoformat() if args.date else None, args.scale, args.seed, args.regenerate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cw", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run the nightly pipeline on the demo company through Airflow")
    p.add_argument("--date", type=_date, help="business day to load (default: the demo's today)")
    p.add_argument("--scale", default="demo")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--regenerate", action="store_true", help="regenerate the demo data")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="all stages in-process, without Airflow")
    p.add_argument("--date", type=_date, default=_yesterday())
    p.add_argument("--full-refresh", action="store_true")
    p.add_argument("--sources", nargs="*")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("extract", help="extract and load one source")
    p.add_argument("source")
    p.add_argument("--date", type=_date, default=_yesterday())
    p.add_argument("--unit")
    p.add_argument("--full", action="store_true", help="reload the whole history")
    p.set_defaults(func=cmd_extract)

    for name in ("transform", "gate", "publish"):
        p = sub.add_parser(name)
        p.add_argument("--date", type=_date, default=_yesterday())
        p.add_argument("--full-refresh", action="store_true")
        if name == "gate":
            p.add_argument("--full", action="store_true",
                           help="check whole raw tables (the full-history audit), not only the new batches")
        p.set_defaults(func=cmd_stage)

    p = sub.add_parser("emulators", help="serve the demo dataset through the API emulators")
    p.add_argument("--data")
    p.add_argument("--scale", default="demo")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=cmd_emulators)

    p = sub.add_parser("warehouse", help="print the warehouse URI")
    p.add_argument("--restart", action="store_true",
                   help="restart the embedded PostgreSQL first (to apply settings that need it)")
    p.set_defaults(func=cmd_warehouse)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
