"""Shared fixtures.

Tests that need PostgreSQL get a fresh database of their own. The server is the one named by
``CW_TEST_PG_URI``; otherwise the local PostgreSQL at 127.0.0.1:5432 when it answers; otherwise
the embedded pgserver (PostgreSQL 16) under ``.warehouse/test-pgdata``. Databases are dropped
after the session, so parallel runs (xdist workers, several developers) never collide.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from hypothesis import settings

os.environ.setdefault("CW_NO_AIRFLOW_LOOKUP", "1")  # tests pass connections explicitly

# CI explores the same examples every run (a red CI must be reproducible); developers get fresh ones
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def _local_pg_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def pg_admin_uri() -> str:
    """A superuser URI of the server used by this test session."""
    if os.environ.get("CW_TEST_PG_URI"):
        return os.environ["CW_TEST_PG_URI"]
    if _local_pg_up():
        try:
            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=2):
                return "postgresql://postgres@127.0.0.1:5432/postgres"
        except psycopg.Error:
            pass
    import pgserver
    from customer_warehouse.paths import state_dir

    server = pgserver.get_server(state_dir(".warehouse") / "test-pgdata", cleanup_mode=None)
    info = server.get_postmaster_info()
    return f"postgresql://postgres@/postgres?host={info.socket_dir}&port={info.port or 5432}"


def _with_db(uri: str, dbname: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(path="/" + dbname))


@pytest.fixture(scope="session")
def make_database(pg_admin_uri) -> Iterator:
    """Factory: ``make_database("prefix")`` → URI of a new empty database, dropped at the end."""
    created: list[str] = []

    def make(prefix: str = "cwtest") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_admin_uri, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
        created.append(name)
        return _with_db(pg_admin_uri, name)

    yield make
    with psycopg.connect(pg_admin_uri, autocommit=True) as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def _worker_database(make_database) -> str:
    return make_database("cwwh")


def _reset(uri: str) -> None:
    """Empty a database cheaply: drop every user schema (DROP DATABASE forces a checkpoint,
    seconds each on a busy server; dropping schemas does not)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("select pg_terminate_backend(pid) from pg_stat_activity "
                     "where datname = current_database() and pid <> pg_backend_pid()")
        schemas = [r[0] for r in conn.execute(
            "select nspname from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema'"
        )]
        for name in schemas:
            conn.execute(f'drop schema "{name}" cascade')
        conn.execute("create schema public")


@pytest.fixture()
def warehouse_uri(_worker_database) -> str:
    """An empty warehouse database for one test (one database per worker, emptied before each test)."""
    _reset(_worker_database)
    return _worker_database


@pytest.fixture()
def wh(warehouse_uri) -> Iterator[psycopg.Connection]:
    """A psycopg 3 connection (not autocommit) to a fresh warehouse database."""
    with psycopg.connect(warehouse_uri) as conn:
        yield conn
