"""A load (or a dbt build) in a process of its own, for the crash tests to SIGKILL.

    python victim.py load  <warehouse uri> <source> <day> <connection json>
    python victim.py build <warehouse uri> <day> <dbt artifacts dir>

The warehouse connection carries ``application_name = reliability-victim`` so the test can
watch it in ``pg_stat_activity`` and kill the process while its COPY (or model) is running.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import psycopg

APP_NAME = "reliability-victim"


def load(uri: str, source: str, day: str, conn_json: str) -> None:
    from customer_warehouse.connections import SourceConfig
    from customer_warehouse.sources import Window, module

    spec = json.loads(conn_json)
    cfg = SourceConfig(spec["conn_id"], spec.get("conn_type", ""), host=spec.get("host", ""),
                       password=spec.get("password"), extra=spec.get("extra") or {})
    src = module(source)
    window = Window.for_day(dt.date.fromisoformat(day))
    with psycopg.connect(uri, application_name=APP_NAME) as conn:
        for unit in src.units(cfg):
            src.extract_load(cfg, str(unit), window, conn)
            conn.commit()


def build(uri: str, day: str, artifacts: str) -> None:
    from customer_warehouse.transform import dbt
    from support import dsn_from_uri

    dbt.build_all(dsn_from_uri(uri), dt.date.fromisoformat(day), artifacts_dir=Path(artifacts))


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(*sys.argv[2:6])
    else:
        build(*sys.argv[2:5])
