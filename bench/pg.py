"""The bench's own PostgreSQL: an embedded pgserver under ``.warehouse/bench-pgdata``, tuned for
bulk loads, with one fresh database per run.

A separate instance lets the bench change server settings (``ALTER SYSTEM``) and drop databases
without disturbing the demo warehouse or other people's test servers. The settings applied are
listed in :data:`TUNING` and explained in docs/tuning.md; ``--no-tuning`` measures the defaults.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import psycopg
from customer_warehouse.paths import state_dir
from customer_warehouse.warehouse import WarehouseDSN, apply_settings, embedded_settings

from .procs import say

# The embedded warehouse's own settings (why each: docs/tuning.md), so the bench measures what a
# user runs; --no-tuning resets them to PostgreSQL's defaults.
TUNING: dict[str, str] = embedded_settings()


class BenchServer:
    def __init__(self, tuned: bool = True, pgdata: Path | None = None):
        import pgserver

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        self.pgdata = pgdata or state_dir(".warehouse") / "bench-pgdata"
        self._lock = _exclusive(self.pgdata)
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="stop")
        self.tuned = tuned
        self.settings = self._apply_settings(TUNING if tuned else {k: None for k in TUNING})

    @property
    def admin(self) -> WarehouseDSN:
        info = self.server.get_postmaster_info()
        return WarehouseDSN(str(info.socket_dir), int(info.port or 5432), "postgres", "", "postgres",
                            embedded=True)

    def _apply_settings(self, wanted: dict[str, str | None]) -> dict[str, str]:
        if apply_settings(self.admin, wanted):
            say("restarting the bench PostgreSQL to apply its settings (shared_buffers, wal_level)")
            self._restart()
        with psycopg.connect(self.admin.uri, autocommit=True) as conn:
            return {name: conn.execute(f"show {name}").fetchone()[0] for name in TUNING}

    def _restart(self) -> None:
        import pgserver

        self.server.cleanup()
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="stop")

    def version(self) -> str:
        with psycopg.connect(self.admin.uri, autocommit=True) as conn:
            return conn.execute("show server_version").fetchone()[0]

    def fresh_database(self, name: str) -> WarehouseDSN:
        """An empty database ``name`` (dropped first if a previous run left it)."""
        with psycopg.connect(self.admin.uri, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')
            conn.execute(f'create database "{name}"')
        a = self.admin
        return WarehouseDSN(a.host, a.port, a.user, a.password, name, embedded=True)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.admin.uri, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')

    def psql(self) -> Path:
        import pgserver._commands as commands

        return Path(commands.POSTGRES_BIN_PATH) / "psql"


def _exclusive(pgdata: Path):
    """Hold a lock on ``pgdata`` for this bench's lifetime. Two benches on one cluster would
    restart or stop it under each other (each stops it when it ends) and measure each other."""
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    handle = open(pgdata.parent / f"{pgdata.name}.lock", "a+")  # noqa: SIM115 — held until exit
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise SystemExit(f"another bench is using {pgdata} (pid {handle.read().strip() or '?'}); wait for it, "
                         "or give this one its own cluster with --pgdata DIR") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def table_rows(dsn: WarehouseDSN, schema_pattern: str) -> dict[str, int]:
    """Rows of every table in the schemas matching ``schema_pattern`` (SQL LIKE)."""
    with psycopg.connect(dsn.uri, autocommit=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables where table_schema like %s "
            "and table_type = 'BASE TABLE' order by 1, 2", (schema_pattern,)).fetchall()
        return {f"{s}.{t}": conn.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables}


def child_env(dsn: WarehouseDSN) -> dict[str, str]:
    """The environment of the stages' child processes: the warehouse connection, no Airflow lookups."""
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update({"AIRFLOW_CONN_WAREHOUSE_DEFAULT": connection_json(dsn), "CW_NO_AIRFLOW_LOOKUP": "1",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))})
    return env


def connection_json(dsn: WarehouseDSN) -> str:
    """``AIRFLOW_CONN_WAREHOUSE_DEFAULT`` (JSON form) for the child processes."""
    import json

    return json.dumps({"conn_type": "postgres", "host": dsn.host, "port": dsn.port, "login": dsn.user,
                       "password": dsn.password, "schema": dsn.dbname})
