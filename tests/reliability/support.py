"""What the reliability tests share: the tiny demo company served by the emulators, fast source
settings, content checksums of the raw layer and the marts, and the fault record.

Checksums ignore the load metadata columns (``_batch_id``, ``_loaded_at``…): two loads of the
same data differ only there, and anything else that differs is a duplicate, a loss or a change.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from customer_warehouse.connections import SourceConfig
from customer_warehouse.emulators import stack as emulator_stack
from customer_warehouse.emulators.server import BackgroundServer
from customer_warehouse.loading.tables import META_COLUMNS
from customer_warehouse.sources import Window, module
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
FAULTS_LOG = REPO / ".artifacts" / "reliability" / "faults.jsonl"
DOC = REPO / "docs" / "reliability.md"

SOURCES = ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files")
RAW_SCHEMAS = ("raw_metrica", "raw_amocrm", "raw_bitrix24", "raw_surveys", "raw_crm_files")
META = tuple(name for name, _ in META_COLUMNS)
TZ = "Europe/Moscow"

# the real quotas, scaled so that a test waits milliseconds instead of seconds
EMULATOR_OPTIONS: dict[str, dict[str, Any]] = {
    "metrica": {"max_days_per_request": 366, "processing_seconds": 0.02},
    "amocrm": {"rate_limit": 1000},
    "bitrix24": {"bucket_size": 10_000, "drain_rate": 10_000},
    "typeform": {},
    "yandex_forms": {"export_polls": 1},
}
FAST_EXTRA: dict[str, dict[str, Any]] = {
    "metrica": {"poll_interval": 0.02, "poll_max_interval": 0.05, "backoff": 0.01, "max_sleep": 0.2,
                "http_timeout": 5},
    "amocrm": {"rate_limit": 1000, "backoff_base": 0.01, "timeout": 5},
    "bitrix24": {"bucket_size": 10_000, "drain_rate": 10_000, "backoff_base": 0.01, "timeout": 5},
    "typeform": {"min_interval_seconds": 0, "backoff_seconds": 0.01},
    "yandex_forms": {"min_interval_seconds": 0, "backoff_seconds": 0.01, "poll_interval_seconds": 0.02},
    "crm_files": {},
    "survey_files": {},
}


# -- the demo company behind emulators ---------------------------------------------------------
@dataclass
class DemoStack:
    """The emulators of one demo folder, and the source configurations that point at them."""

    data: Path
    manifest: dict
    servers: dict[str, BackgroundServer] = field(default_factory=dict)
    apps: dict[str, Any] = field(default_factory=dict)
    traffic: dict[str, Traffic] = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return dt.date.fromisoformat(self.manifest["today"])

    def app(self, source: str):
        return self.apps[source]

    def faults(self, source: str):
        """The emulator's :class:`FaultPlan` (each emulator has one)."""
        return self.app(source).state.faults

    def config(self, source: str, **extra) -> SourceConfig:
        stack = emulator_stack.Stack(self.data, self.manifest, self.servers)
        env = stack.connections()
        raw = json.loads(env[f"AIRFLOW_CONN_{_conn_id(source).upper()}"])
        merged = {**(raw.get("extra") or {}), **FAST_EXTRA[source], **extra}
        return SourceConfig(_conn_id(source), raw.get("conn_type", ""), host=raw.get("host") or "",
                            password=raw.get("password"), extra=merged)

    def stop(self) -> None:
        for srv in self.servers.values():
            srv.stop()


def _conn_id(source: str) -> str:
    from customer_warehouse.connections import SOURCE_CONN_IDS

    return SOURCE_CONN_IDS[source]


def start_stack(data: Path, only: tuple[str, ...] = tuple(emulator_stack.EMULATORS),
                **overrides: dict[str, Any]) -> DemoStack:
    """Start fresh emulators (fresh fault plans and quotas) on the demo folder ``data``."""
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    stack = DemoStack(data, manifest)
    for name in only:
        opts = {**EMULATOR_OPTIONS[name], **overrides.get(name, {})}
        app = importlib.import_module(emulator_stack.EMULATORS[name]).create_app(data, **opts)
        stack.apps[name] = app
        stack.traffic[name] = Traffic(app)
        stack.servers[name] = BackgroundServer(stack.traffic[name]).start()
    return stack


class Traffic:
    """ASGI wrapper around an emulator recording every request (method, path, status) it answers,
    faults included, so a test can count retries the way the server saw them."""

    def __init__(self, app):
        self.app = app
        self.requests: list[tuple[str, str, int | None]] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            return await self.app(scope, receive, send)
        entry = [scope["method"], scope["path"], None]
        self.requests.append(entry)  # appended first: a dropped connection still counts

        async def watch(message):
            if message["type"] == "http.response.start":
                entry[2] = message["status"]
            await send(message)

        await self.app(scope, receive, watch)

    def count(self, pattern: str) -> int:
        return sum(1 for _, path, _ in self.requests if re.search(pattern, path))

    def mark(self) -> int:
        return len(self.requests)

    def since(self, mark: int) -> list:
        return self.requests[mark:]


def load_source(stack: DemoStack, conn, source: str, day: dt.date, *, full: bool = False,
                **extra) -> list:
    """Every unit of ``source`` for ``day``, as the DAG's mapped task would run it; commits."""
    cfg = stack.config(source, **extra)
    src = module(source)
    results = []
    for unit in src.units(cfg):
        results += src.extract_load(cfg, str(unit), Window.for_day(day, TZ, full=full), conn)
        conn.commit()
    return results


def load_all(stack: DemoStack, conn, day: dt.date, sources=SOURCES, **kw) -> dict[str, list]:
    return {s: load_source(stack, conn, s, day, **kw) for s in sources}


# -- checksums ---------------------------------------------------------------------------------
def tables(conn, schemas) -> list[tuple[str, str]]:
    rows = conn.execute(
        "select table_schema, table_name from information_schema.tables where table_schema = any(%s) "
        "and table_type = 'BASE TABLE' order by 1, 2", (list(schemas),)).fetchall()
    return [(r[0], r[1]) for r in rows]


def table_checksum(conn, schema: str, table: str, exclude=META) -> tuple[int, str]:
    """(rows, md5 of the sorted rows' text) over every column except ``exclude``."""
    cols = [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by column_name", (schema, table)).fetchall() if r[0] not in exclude]
    q = sql.SQL("select count(*), coalesce(md5(string_agg(r, E'\\n' order by r)), '') from "
                "(select row({cols})::text as r from {t}) x").format(
        cols=sql.SQL(", ").join(map(sql.Identifier, cols)), t=sql.Identifier(schema, table))
    n, digest = conn.execute(q).fetchone()
    return n, digest


def checksums(conn, schemas=RAW_SCHEMAS, exclude=META) -> dict[str, tuple[int, str]]:
    """``{"schema.table": (rows, md5)}`` of every table in ``schemas``."""
    with conn.transaction():
        return {f"{s}.{t}": table_checksum(conn, s, t, exclude) for s, t in tables(conn, schemas)}


def ledger_balanced(conn) -> list[tuple]:
    """Loaded batches whose rows do not add up (should be none)."""
    return conn.execute("select source, entity, unit from raw_meta.load_batches where status = 'loaded' "
                        "and rows_read <> rows_loaded + rows_quarantined").fetchall()


def connect(uri: str) -> psycopg.Connection:
    return psycopg.connect(uri)


# -- the fault record --------------------------------------------------------------------------
def record_fault(nodeid: str, fault: str, *, source: str, injected: int, retried: int = 0,
                 recovered: bool = False, failed_loudly: bool = False, note: str = "") -> None:
    """Append one outcome to ``.artifacts/reliability/faults.jsonl`` (rendered at session end)."""
    FAULTS_LOG.parent.mkdir(parents=True, exist_ok=True)
    row = {"at": time.time(), "pid": os.getpid(), "test": nodeid, "fault": fault, "source": source,
           "injected": int(injected), "retried": int(retried), "recovered": bool(recovered),
           "failed_loudly": bool(failed_loudly), "note": note}
    with open(FAULTS_LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")


def dsn_from_uri(uri: str):
    """The :class:`WarehouseDSN` of a test database (what dbt, the gate and publishing take)."""
    from customer_warehouse.warehouse import WarehouseDSN
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(uri)
    return WarehouseDSN(host=info.get("host", "localhost"), port=int(info.get("port", 5432)),
                        user=info.get("user", "postgres"), password=info.get("password", ""), dbname=info["dbname"])
