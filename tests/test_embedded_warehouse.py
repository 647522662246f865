"""The embedded warehouse (no connection configured) runs with the settings the bench measures."""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest
from customer_warehouse.warehouse import embedded_settings, restart_embedded, start_embedded

pytestmark = [pytest.mark.integration]


def _postmaster_pid(pgdata) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


@pytest.fixture
def pgdata(tmp_path):
    path = tmp_path / "pgdata"
    yield path
    if (path / "postmaster.pid").exists():
        pid = _postmaster_pid(path)
        os.kill(pid, signal.SIGINT)  # fast shutdown
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)


def _show(dsn, name: str) -> str:
    with psycopg.connect(dsn.uri) as conn:
        return conn.execute(f"show {name}").fetchone()[0]


def test_a_new_embedded_warehouse_starts_tuned_and_keeps_running(pgdata):
    dsn = start_embedded(pgdata)
    wanted = embedded_settings()
    for name in ("shared_buffers", "work_mem", "max_wal_size", "random_page_cost", "wal_level"):
        assert _show(dsn, name) == wanted[name], name  # shared_buffers: the first start restarted it
    assert dsn.dbname == "warehouse"
    pid = _postmaster_pid(pgdata)
    written = (pgdata / "postgresql.auto.conf").stat().st_mtime_ns

    again = start_embedded(pgdata)  # the next command: settled, no restart under other clients
    assert _postmaster_pid(pgdata) == pid
    assert (pgdata / "postgresql.auto.conf").stat().st_mtime_ns == written  # nor a rewrite
    assert _show(again, "shared_buffers") == wanted["shared_buffers"]

    restart_embedded(pgdata)  # `cw warehouse --restart`: same sockets, settings still in force
    assert _postmaster_pid(pgdata) != pid
    assert _show(again, "work_mem") == wanted["work_mem"]
