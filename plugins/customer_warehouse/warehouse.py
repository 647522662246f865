"""The warehouse PostgreSQL: the ``warehouse_default`` connection, or an embedded server.

When no warehouse connection is configured, a PostgreSQL 16 is started from the ``pgserver``
package with its data in the git-ignored ``.warehouse/`` folder, and reused by later runs.
Everything else (loaders, dbt, GX, publishing) receives the same :class:`WarehouseDSN`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from .connections import WAREHOUSE_CONN_ID, get_connection
from .paths import state_dir

log = logging.getLogger(__name__)

EMBEDDED_DB = "warehouse"


@dataclass(frozen=True)
class WarehouseDSN:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    embedded: bool = False

    @property
    def uri(self) -> str:
        """A libpq URI (works with psql, psycopg and SQLAlchemy after the scheme is adapted)."""
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        if self.host.startswith("/"):  # a Unix socket folder
            return f"postgresql://{auth}@/{self.dbname}?host={quote(self.host, safe='/')}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}"

    @property
    def redacted_uri(self) -> str:
        return self.uri.replace(":" + quote(self.password, safe=""), ":***") if self.password else self.uri

    @property
    def sqlalchemy_url(self) -> str:
        return self.uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def dbt_env(self) -> dict[str, str]:
        """The environment ``dbt_project/profiles.yml`` reads with ``env_var()``."""
        return {
            "WAREHOUSE_HOST": self.host,
            "WAREHOUSE_PORT": str(self.port),
            "WAREHOUSE_USER": self.user,
            "WAREHOUSE_PASSWORD": self.password,
            "WAREHOUSE_DB": self.dbname,
        }


def embedded_settings() -> dict[str, str]:
    """PostgreSQL settings of the embedded warehouse (why each: docs/tuning.md). The bench applies
    the same, so its figures are what a `make demo` user gets. None of them trades durability;
    wal_level=minimal rules out streaming replicas and point-in-time recovery of this cluster."""
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return {
        "shared_buffers": "512MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "work_mem": "64MB",
        "maintenance_work_mem": "512MB",
        "effective_cache_size": f"{max(1024, ram_mb // 2)}MB",
        "random_page_cost": "1.1",
        # a table dbt (re)creates is then written without WAL and flushed once at commit; the
        # embedded warehouse has no replicas or WAL archive to feed (max_wal_senders=0 is required)
        "wal_level": "minimal",
        "max_wal_senders": "0",
    }


def apply_settings(admin: WarehouseDSN, wanted: dict[str, str | None]) -> bool:
    """``ALTER SYSTEM`` each setting (None = back to the default) and reload; True when one that
    only a restart applies (shared_buffers, wal_level) is not in force yet."""
    import psycopg

    with psycopg.connect(admin.uri, autocommit=True) as conn:
        in_force = dict(conn.execute("select name, current_setting(name) from pg_settings where name = any(%s)",
                                     (list(wanted),)).fetchall())
        if all(value is not None and in_force.get(name) == value for name, value in wanted.items()):
            return False  # the usual start: nothing to write, no reload signalled to every backend
        for name, value in wanted.items():
            if value is None:
                conn.execute(f"alter system reset {name}")
            else:
                conn.execute(f"alter system set {name} = '{value}'")
        conn.execute("select pg_reload_conf()")
        # compared here rather than read from pending_restart, which the reload (asynchronous)
        # may not have set yet; SHOW prints memory in the largest exact unit, as written above
        # (a reset one is compared with the built-in default, in the same units)
        stale = conn.execute(
            "select coalesce(bool_or(case when wanted.value is null then settings.setting <> settings.boot_val "
            "else current_setting(settings.name) <> wanted.value end), false) "
            "from pg_settings as settings join unnest(%s::text[], %s::text[]) as wanted (name, value) "
            "on wanted.name = settings.name where settings.context = 'postmaster'",
            (list(wanted), list(wanted.values()))).fetchone()[0]
        return bool(stale)


def restart_embedded(pgdata: Path) -> None:
    """Restart an embedded server in place (pg_ctl reuses the socket options it was started with)."""
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.name == "posix" and os.geteuid() == 0 else None  # as pgserver runs it
    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=pgdata, user=user, timeout=60)


def embedded_running(pgdata: Path | None = None) -> bool:
    from pgserver.utils import PostmasterInfo

    pgdata = pgdata or embedded_pgdata()

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def start_embedded(pgdata: Path) -> WarehouseDSN:
    """Start (or reuse) the embedded PostgreSQL in ``pgdata`` with :func:`embedded_settings`, and
    its ``warehouse`` database."""
    import pgserver
    import psycopg

    # pgserver narrates every start and exit at INFO; keep our own log line instead
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    was_running = embedded_running(pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # keep running between commands
    info = server.get_postmaster_info()
    socket_dir, port = str(info.socket_dir), int(info.port or 5432)
    admin = WarehouseDSN(socket_dir, port, "postgres", "", "postgres", embedded=True)
    if apply_settings(admin, embedded_settings()):
        if was_running:  # other processes may be connected: never pull it from under them
            log.warning("the embedded PostgreSQL in %s needs a restart to apply its settings "
                        "(shared_buffers, wal_level): when nothing uses it, run `cw warehouse --restart`", pgdata)
        else:  # this process just started it (usually a new cluster's first start): nobody is on it yet
            restart_embedded(pgdata)
    with psycopg.connect(admin.uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DB,)).fetchone()
        if not exists:
            conn.execute(f'create database "{EMBEDDED_DB}"')
    return WarehouseDSN(socket_dir, port, "postgres", "", EMBEDDED_DB, embedded=True)


def embedded_pgdata() -> Path:
    return state_dir(".warehouse") / "pgdata"


def _embedded() -> WarehouseDSN:
    pgdata = embedded_pgdata()
    log.info("no %s connection: using the embedded PostgreSQL in %s", WAREHOUSE_CONN_ID, pgdata)
    return start_embedded(pgdata)


@lru_cache(maxsize=1)
def resolve() -> WarehouseDSN:
    """The warehouse to use in this process."""
    cfg = get_connection(WAREHOUSE_CONN_ID)
    if cfg is None:
        return _embedded()
    return WarehouseDSN(
        host=cfg.host or "localhost",
        port=int(cfg.port or 5432),
        user=cfg.login or "postgres",
        password=cfg.password or "",
        dbname=cfg.schema or "postgres",
    )


def connect(autocommit: bool = False, dsn: WarehouseDSN | None = None):
    """A psycopg 3 connection to the warehouse."""
    import psycopg

    dsn = dsn or resolve()
    return psycopg.connect(dsn.uri, autocommit=autocommit, application_name="customer_warehouse")


def export_env(dsn: WarehouseDSN | None = None) -> WarehouseDSN:
    """Put the warehouse settings into this process's environment for dbt and child processes."""
    dsn = dsn or resolve()
    os.environ.update(dsn.dbt_env())
    return dsn
