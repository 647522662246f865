"""The whole nightly pipeline (extract_load of every source → dbt build → quality gate → publish)
on the tiny demo company, several times. Soak only: each pass costs a few minutes of dbt and GX.

* the pipeline twice for the same day publishes identical marts (checksums of every table);
* dbt SIGKILLed mid-build leaves the published ``marts`` untouched (BI keeps yesterday's), the
  half-built ``marts_build`` is not published, and the rerun publishes what a clean run does;
* 30 nightly runs publish, on the last day, the marts of one history run up to that day.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from customer_warehouse.publish.publisher import PublishBlocked
from psycopg.conninfo import conninfo_to_dict
from support import RAW_SCHEMAS, SOURCES, checksums, dsn_from_uri, load_all, load_source, start_stack

pytestmark = [pytest.mark.soak, pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("reliability")]

VICTIM = Path(__file__).with_name("victim.py")
KEY = "reliability-hmac-key"


def build_gate_publish(uri: str, day: dt.date, artifacts: Path, alerts: list | None = None) -> dict:
    from customer_warehouse.publish import publisher
    from customer_warehouse.quality import gate
    from customer_warehouse.transform import dbt

    dsn = dsn_from_uri(uri)
    dbt.build_all(dsn, day, artifacts_dir=artifacts / "dbt")
    result = gate.run_gate(dsn, run_date=day, docs_dir=artifacts / "docs")
    return publisher.publish(dsn, run_date=day, gate_result=result, hmac_key=KEY,
                             alert=(alerts if alerts is not None else []).append)


def marts(uri: str) -> dict:
    with psycopg.connect(uri) as c:
        return checksums(c, ["marts"], exclude=())


@pytest.fixture(scope="module")
def stack(demo_data):
    s = start_stack(demo_data)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def published(stack, make_database, tmp_path_factory):
    """A warehouse after one clean nightly run of the demo's today: (uri, marts checksums)."""
    uri = make_database("cwsoak")
    with psycopg.connect(uri) as c:
        load_all(stack, c, stack.today)
    outcome = build_gate_publish(uri, stack.today, tmp_path_factory.mktemp("soak-artifacts"))
    assert outcome["status"] == "published"
    sums = marts(uri)
    assert sums and all(n > 0 for n, _ in sums.values()), sums
    return uri, sums


def test_the_pipeline_twice_for_the_same_day_publishes_identical_marts(stack, published, tmp_path):
    uri, first = published
    with psycopg.connect(uri) as c:
        raw_before = checksums(c, RAW_SCHEMAS)
        load_all(stack, c, stack.today)
        assert checksums(c, RAW_SCHEMAS) == raw_before
    build_gate_publish(uri, stack.today, tmp_path)
    assert marts(uri) == first


def _sessions(watch, dbname: str) -> set[int]:
    return {r[0] for r in watch.execute("select pid from pg_stat_activity where datname = %s and pid <> "
                                        "pg_backend_pid()", (dbname,)).fetchall()}


def _dbt_writing(watch, dbname: str) -> bool:
    return watch.execute(
        "select count(*) from pg_stat_activity where datname = %s and pid <> pg_backend_pid() and state = 'active' "
        "and query ilike %s", (dbname, '%"marts_build"%')).fetchone()[0] > 0


def test_dbt_killed_mid_build_leaves_yesterdays_marts_and_the_rerun_equals_a_clean_run(
        stack, published, tmp_path, fault_record):
    uri, clean = published
    day = stack.today
    dbname = conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(uri, autocommit=True) as watch:
        before = _sessions(watch, dbname)  # e.g. the gate's pooled connections, which stay idle
        proc = subprocess.Popen([sys.executable, str(VICTIM), "build", uri, day.isoformat(), str(tmp_path / "victim")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        killed = False
        try:
            deadline = time.monotonic() + 900
            while proc.poll() is None and time.monotonic() < deadline:
                if _dbt_writing(watch, dbname):
                    time.sleep(1.0)
                    if proc.poll() is None:
                        os.kill(proc.pid, signal.SIGKILL)
                        proc.wait()
                        killed = True
                    break
                time.sleep(0.1)
            while _sessions(watch, dbname) - before:  # the server drops the dead build's sessions
                time.sleep(0.1)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert killed, "dbt finished before it could be killed"
    untouched = marts(uri) == clean
    fault_record("SIGKILL mid dbt build", source="dbt", injected=1, failed_loudly=untouched,
                 note="BI keeps the previous marts")
    assert untouched, "the published marts changed under a killed build"

    from customer_warehouse.quality import gate

    alerts: list = []
    with pytest.raises(PublishBlocked):  # the half-built schema must not ship
        from customer_warehouse.publish import publisher

        result = gate.run_gate(dsn_from_uri(uri), run_date=day, docs_dir=tmp_path / "docs")
        publisher.publish(dsn_from_uri(uri), run_date=day, gate_result=result, hmac_key=KEY,
                          alert=alerts.append)
    assert marts(uri) == clean and alerts

    build_gate_publish(uri, day, tmp_path)  # the rerun
    assert marts(uri) == clean


def test_thirty_nightly_runs_publish_the_marts_of_one_history_run(stack, published, make_database, tmp_path):
    uri, at_once = published
    nightly_uri = make_database("cwsoak30")
    start = stack.today - dt.timedelta(days=30)
    with psycopg.connect(nightly_uri) as c:
        load_all(stack, c, start)  # the history up to D-30, then one run per day
        day = start + dt.timedelta(days=1)
        while day <= stack.today:
            for source in SOURCES:
                load_source(stack, c, source, day)
            day += dt.timedelta(days=1)
        with psycopg.connect(uri) as other:
            assert checksums(c, RAW_SCHEMAS) == checksums(other, RAW_SCHEMAS)
    build_gate_publish(nightly_uri, stack.today, tmp_path)
    assert marts(nightly_uri) == at_once
