"""``python -m customer_warehouse.transform``: build every mart for a run date on the warehouse.

The warehouse is the ``warehouse_default`` connection or the embedded PostgreSQL
(customer_warehouse.warehouse.resolve); prints the timings and the churn-model fit as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_warehouse.transform", description=__doc__)
    parser.add_argument("--run-date", type=dt.date.fromisoformat, default=dt.date.today(),
                        help="observation end (default: today)")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild incremental models from scratch")
    parser.add_argument("--time-unit", choices=("week", "day"), default="week", help="BG/NBD time unit")
    parser.add_argument("--churn-model", choices=("bgnbd", "mbgnbd"), default="bgnbd", help="churn model variant")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from ..warehouse import resolve
    from .dbt import DbtBuildError, build_all

    try:
        summary = build_all(resolve(), args.run_date, full_refresh=args.full_refresh, time_unit=args.time_unit,
                            variant=args.churn_model)
    except DbtBuildError as err:
        print(str(err), file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("run_date", "timings", "churn_model")}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
