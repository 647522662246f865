"""``python -m customer_warehouse.quality``: run the gate by hand and print the summary.

Exit status 0 when the build may be published, 1 when a blocking check failed — handy before a
manual ``publish`` and in CI against a scratch warehouse.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .. import warehouse
from .gate import DEFAULT_SCHEMAS, run_gate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_warehouse.quality", description=__doc__)
    parser.add_argument("--schema", action="append", dest="schemas",
                        help="raw | raw_<source> | marts_build | marts (repeatable; default raw + marts_build)")
    parser.add_argument("--run-date", default=None)
    parser.add_argument("--no-record", action="store_true",
                        help="do not write ops.quality_results nor accept the checked batches")
    parser.add_argument("--full", action="store_true",
                        help="check whole raw tables (the full-history audit), not only new batches")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run_gate(warehouse.resolve(), tuple(args.schemas or DEFAULT_SCHEMAS), run_date=args.run_date,
                      record_results=not args.no_record, full=args.full)
    print(result.summary(limit=50))
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
