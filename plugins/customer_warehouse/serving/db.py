"""Read-only access to the published marts, as the ``bi_reader`` role.

Which connection the dashboard uses, in order:

1. an explicit DSN given to :func:`~customer_warehouse.serving.app.create_app` (tests, compose);
2. the Airflow connection ``bi_reader_default`` (a login as the BI role, e.g. with
   ``CW_BI_READER_PASSWORD`` set at publish time) — used as is, no SET ROLE;
3. the warehouse DSN (``warehouse_default`` or the embedded server) with ``SET ROLE`` to the
   ``bi_reader`` role of :mod:`customer_warehouse.publish.roles` (prefix ``CW_ROLE_PREFIX``)
   when that role exists. Before the first publish it does not, and the dashboard reads as the
   warehouse user and says so in its footer.

Each request opens one connection, read-only, with ``search_path = marts`` and a statement
timeout, and runs every query of the page in it; a failing query fails only its panel.
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

BI_CONN_ID = "bi_reader_default"
AUTO = "auto"
STATEMENT_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class ReaderConfig:
    uri: str
    role: str | None  # SET ROLE target; AUTO = the bi_reader role if it exists; None = as connected
    source: str  # how it was chosen, for the footer and the logs

    def redacted(self) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(self.uri)
        return self.uri.replace(f":{parts.password}@", ":***@") if parts.password else self.uri


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    error: str | None = None
    missing: bool = False  # the relation does not exist (not published yet)


def _conn_uri(cfg) -> str:
    auth = quote(cfg.login or "bi_reader", safe="")
    if cfg.password:
        auth += ":" + quote(cfg.password, safe="")
    host = cfg.host or "localhost"
    port = cfg.port or 5432
    dbname = cfg.schema or "postgres"
    if host.startswith("/"):
        return f"postgresql://{auth}@/{dbname}?host={quote(host, safe='/')}&port={port}"
    return f"postgresql://{auth}@{host}:{port}/{dbname}"


def resolve_reader(dsn: Any = None, role: str | None = AUTO) -> ReaderConfig:
    """Where and as whom the dashboard reads; see the module docstring."""
    if dsn is not None:
        uri = dsn.uri if hasattr(dsn, "uri") else str(dsn)
        return ReaderConfig(uri, role, "explicit DSN")
    from ..connections import get_connection

    cfg = get_connection(BI_CONN_ID)
    if cfg is not None:
        return ReaderConfig(_conn_uri(cfg), None if role == AUTO else role, f"connection {BI_CONN_ID}")
    from ..warehouse import resolve

    return ReaderConfig(resolve().uri, role, "warehouse DSN")


def bi_role_name() -> str:
    from ..publish.roles import role_names

    return role_names()["bi_reader"]


@contextmanager
def reader(config: ReaderConfig) -> Iterator[tuple[psycopg.Connection, str]]:
    """A read-only connection on ``marts``; yields it and the role it reads as."""
    with psycopg.connect(config.uri, autocommit=True, connect_timeout=10,
                         application_name="customer_warehouse.dashboard") as conn:
        role = config.role
        if role == AUTO:
            candidate = bi_role_name()
            exists = conn.execute("select 1 from pg_roles where rolname = %s", (candidate,)).fetchone()
            role = candidate if exists else None
            if not exists:
                log.warning("role %s does not exist (nothing published yet?): reading as the connecting user",
                            candidate)
        if role:
            conn.execute(sql.SQL("set role {}").format(sql.Identifier(role)))
        conn.execute("set default_transaction_read_only = on")
        conn.execute(sql.SQL("set statement_timeout = {}").format(sql.Literal(STATEMENT_TIMEOUT_MS)))
        conn.execute("set search_path = marts")
        as_whom = conn.execute("select current_user").fetchone()[0]
        yield conn, as_whom


def run(conn: psycopg.Connection, query: str) -> QueryResult:
    """Run one page query; errors come back in the result instead of raising."""
    try:
        cur = conn.execute(query)
        columns = [d.name for d in cur.description or []]
        return QueryResult(columns, cur.fetchall())
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName) as err:
        return QueryResult([], [], _first_line(err), missing=True)
    except psycopg.Error as err:
        log.warning("dashboard query failed: %s", _first_line(err))
        return QueryResult([], [], _first_line(err))


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def plain(value: Any) -> Any:
    """JSON-friendly values: Decimal → float or int, dates → ISO strings."""
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() and abs(value) < 2**53 else float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
