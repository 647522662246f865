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


def _embedded() -> WarehouseDSN:
    import pgserver
    import psycopg

    pgdata = state_dir(".warehouse") / "pgdata"
    # pgserver narrates every start and exit at INFO; keep our own log line instead
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    log.info("no %s connection: using the embedded PostgreSQL in %s", WAREHOUSE_CONN_ID, pgdata)
    server = pgserver.get_server(pgdata, cleanup_mode=None)  # keep running between commands
    info = server.get_postmaster_info()
    socket_dir, port = str(info.socket_dir), int(info.port or 5432)
    admin = WarehouseDSN(socket_dir, port, "postgres", "", "postgres", embedded=True)
    with psycopg.connect(admin.uri, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (EMBEDDED_DB,)).fetchone()
        if not exists:
            conn.execute(f'create database "{EMBEDDED_DB}"')
    return WarehouseDSN(socket_dir, port, "postgres", "", EMBEDDED_DB, embedded=True)


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
