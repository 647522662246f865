"""Crash safety: a load SIGKILLed half-way leaves no partial window visible, and the rerun equals
a clean run.

The load runs in a subprocess (victim.py) that the test kills at a chosen moment: while
PostgreSQL shows its COPY running (a CRM export being streamed in), or while it waits for a
later page of an amoCRM list with the batch's transaction open (a ``delay`` fault holds the page).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from support import checksums, ledger_balanced, load_source, start_stack
from victim import APP_NAME

pytestmark = pytest.mark.integration

VICTIM = Path(__file__).with_name("victim.py")
BIG_ORDERS = 20_000


def _spawn_load(uri: str, source: str, day: dt.date, cfg) -> subprocess.Popen:
    spec = {"conn_id": cfg.conn_id, "conn_type": cfg.conn_type, "host": cfg.host, "password": cfg.password,
            "extra": cfg.extra}
    return subprocess.Popen([sys.executable, str(VICTIM), "load", uri, source, day.isoformat(), json.dumps(spec)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _victim_backends(watch, state: str = "%", query: str = "%") -> int:
    return watch.execute(
        "select count(*) from pg_stat_activity where datname = current_database() and application_name = %s "
        "and state like %s and query ilike %s", (APP_NAME, state, query)).fetchone()[0]


def kill_when(proc: subprocess.Popen, uri: str, *, state: str, query: str = "%", settle: float = 0.3,
              timeout: float = 90) -> bool:
    """SIGKILL ``proc`` once its warehouse session is in ``state`` running ``query`` (ILIKE
    pattern) in pg_stat_activity; False when it ended first. Waits until the server has dropped
    the dead session. The process never outlives this call."""
    deadline = time.monotonic() + timeout
    try:
        with psycopg.connect(uri, autocommit=True) as watch:
            while proc.poll() is None and time.monotonic() < deadline:
                if _victim_backends(watch, state, query):
                    time.sleep(settle)  # well inside it, rows already sent
                    if proc.poll() is not None:
                        return False
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)
                    while _victim_backends(watch):
                        time.sleep(0.05)
                    return True
                time.sleep(0.02)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _big_orders(folder: Path, rows: int) -> None:
    """The demo's orders export repeated with new order ids: enough rows for a COPY that lasts."""
    path = folder / "orders.csv"
    header, *lines = path.read_text(encoding="cp1251").splitlines()
    out = [header]
    for i in range(rows):
        line = lines[i % len(lines)]
        out.append(f"Z9{i:09d}" + line[line.index(";"):])
    path.write_text("\n".join(out) + "\n", encoding="cp1251")


def _ledger(conn) -> list[tuple]:
    return conn.execute("select source, entity, status, rows_loaded from raw_meta.load_batches "
                        "order by started_at").fetchall()


def test_a_crm_export_killed_mid_copy_leaves_the_previous_snapshot_and_the_rerun_equals_a_clean_run(
        demo_copy, conn, warehouse_uri, fault_record):
    crm = demo_copy / "files" / "crm"
    cfg = start_stack(demo_copy, only=()).config("crm_files")
    day = dt.date(2026, 11, 20)
    load_source_cfg(conn, cfg, day)
    before, ledger_before = checksums(conn), _ledger(conn)
    quarantined = conn.execute("select count(*) from raw_meta.quarantine").fetchone()[0]

    _big_orders(crm, BIG_ORDERS)
    proc = _spawn_load(warehouse_uri, "crm_files", day, cfg)
    killed = kill_when(proc, warehouse_uri, state="active", query="copy%raw_crm_files%orders%")
    assert killed, "the load ended before its COPY could be killed: " + proc.stderr.read().decode()[-2000:]

    conn.rollback()
    intact = checksums(conn) == before and _ledger(conn) == ledger_before
    fault_record("SIGKILL mid-COPY", source="crm_files", injected=1, failed_loudly=intact,
                 note=f"{BIG_ORDERS} orders being copied; previous snapshot still visible")
    assert checksums(conn) == before, "a partial snapshot became visible"
    assert _ledger(conn) == ledger_before, "a killed batch left a ledger row"
    assert conn.execute("select count(*) from raw_meta.quarantine").fetchone()[0] == quarantined

    load_source_cfg(conn, cfg, day)  # the rerun
    rerun = checksums(conn)
    assert rerun["raw_crm_files.orders"][0] == BIG_ORDERS
    _reset(conn)
    load_source_cfg(conn, cfg, day)  # a clean run of the same export
    assert checksums(conn) == rerun
    assert ledger_balanced(conn) == []


def test_an_amocrm_run_killed_with_its_batch_open_shows_nothing_and_the_rerun_equals_a_clean_run(
        demo_data, conn, warehouse_uri, fault_record):
    stack = start_stack(demo_data, only=("amocrm",))
    try:
        extra = {"start_date": (stack.today - dt.timedelta(days=15)).isoformat(), "page_limit": 20}
        load_source(stack, conn, "amocrm", stack.today - dt.timedelta(days=1), **extra)
        before = checksums(conn)
        hold = stack.faults("amocrm").add(path=r"/api/v4/leads$", delay=20, after=1)  # page 2 of the leads

        proc = _spawn_load(warehouse_uri, "amocrm", stack.today, stack.config("amocrm", **extra))
        fired = _wait_fired(hold, proc)
        killed = kill_when(proc, warehouse_uri, state="idle in transaction", settle=0.0) if fired else False
        assert killed, "the run never reached the held page: " + proc.stderr.read().decode()[-2000:]
        conn.rollback()
        intact = checksums(conn) == before
        fault_record("SIGKILL with a batch open", source="amocrm", injected=hold.fired, failed_loudly=intact,
                     note="killed while page 2 of the leads was held; nothing of the batch visible")
        assert intact, "a partial window of the killed batch became visible"

        stack.faults("amocrm").clear()
        load_source(stack, conn, "amocrm", stack.today, **extra)  # the rerun
        rerun = checksums(conn)
        _reset(conn)
        load_source(stack, conn, "amocrm", stack.today, **extra)  # a clean run of the day
        assert checksums(conn) == rerun
        assert ledger_balanced(conn) == []
    finally:
        stack.stop()


def _wait_fired(fault, proc: subprocess.Popen, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while fault.fired == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if fault.fired == 0 and proc.poll() is None:
        proc.kill()
        proc.wait()
    return fault.fired > 0


def load_source_cfg(conn, cfg, day: dt.date) -> None:
    from customer_warehouse.sources import Window, module

    src = module("crm_files")
    for unit in src.units(cfg):
        src.extract_load(cfg, unit, Window.for_day(day), conn)
        conn.commit()


def _reset(conn) -> None:
    for schema in ("raw_crm_files", "raw_amocrm", "raw_meta"):
        conn.execute(f"drop schema if exists {schema} cascade")
    conn.commit()
