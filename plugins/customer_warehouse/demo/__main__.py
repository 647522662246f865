"""Command line: ``python -m customer_warehouse.demo generate|evaluate ...``."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys


def _parser() -> argparse.ArgumentParser:
    from .generate import HOLDOUT_DAYS, SCALES

    parser = argparse.ArgumentParser(prog="python -m customer_warehouse.demo",
                                     description="The demo company «Зерно и Пар»: generate sources, evaluate marts.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write the served demo folder and its hidden truth")
    gen.add_argument("--out", required=True, help="served folder (what the emulators serve)")
    gen.add_argument("--truth", help="truth folder (default: OUT/../truth); never inside --out")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--scale", choices=sorted(SCALES, key=SCALES.get), default="demo")
    gen.add_argument("--today", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20),
                     help="the day the data is served as of (nothing on or after it is served)")
    gen.add_argument("--holdout-days", type=int, default=HOLDOUT_DAYS,
                     help="days after today simulated for the truth only (churn labels)")
    gen.add_argument("--customers", type=int, help="override the scale's number of customers")
    gen.add_argument("--workers", type=int, default=1,
                     help="processes rendering chunks (same bytes whatever the number)")
    gen.add_argument("--quiet", action="store_true", help="no progress on stderr")
    ev = sub.add_parser("evaluate", help="score the published marts against the truth")
    ev.add_argument("--truth", required=True, help="truth folder written by generate")
    ev.add_argument("--warehouse-uri", help="PostgreSQL URI (default: the warehouse_default connection)")
    ev.add_argument("--schema", default="marts", help="schema of the published marts")
    ev.add_argument("--json", help="also write the report as JSON to this file")
    ev.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "generate":
        from .generate import generate

        manifest = generate(args.out, args.truth, seed=args.seed, scale=args.scale, today=args.today,
                            holdout_days=args.holdout_days, customers=args.customers, progress=not args.quiet,
                            workers=args.workers)
        if not args.quiet:
            print(json.dumps(manifest["counts"], ensure_ascii=False, indent=2))
        return 0
    from .evaluate import evaluate, format_report

    uri = args.warehouse_uri
    if not uri:
        from ..warehouse import resolve

        uri = resolve().uri
    report = evaluate(args.truth, uri, schema=args.schema)
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
    return 1 if args.strict and not report["passed"] else 0


if __name__ == "__main__":
    sys.exit(main())
