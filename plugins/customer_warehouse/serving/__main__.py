"""``python -m customer_warehouse.serving [--port 8088] [--host 127.0.0.1] [--lang ru|en]``:
serve the dashboard on localhost and print its URL (what ``make dashboard`` runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from .formatting import LANGS, default_lang


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m customer_warehouse.serving", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8088, help="port (default 8088)")
    parser.add_argument("--lang", choices=LANGS, default=None, help="default language (env CW_DASHBOARD_LANG, ru)")
    parser.add_argument("--dsn", default=None, help="PostgreSQL URI to read (default: bi_reader_default / warehouse)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import uvicorn

    from .app import create_app

    app = create_app(dsn=args.dsn, lang=args.lang or default_lang())
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
    print(f"Dashboard: http://{shown}:{args.port}/  (Ctrl+C to stop)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
