"""The DAG file: imports cleanly, is cheap to parse, and loads the day it is asked for."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pendulum
import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_ID = "customer_warehouse_nightly"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dags_import_cleanly(dagbag):
    assert not dagbag.import_errors
    assert DAG_ID in dagbag.dags


def test_dag_settings(dagbag):
    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = dagbag.dags[DAG_ID]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)  # explicit data intervals
    assert dag.timetable._expression == "0 2 * * *"
    assert str(dag.timetable._timezone) in ("Europe/Moscow", "Timezone('Europe/Moscow')")
    assert dag.catchup is False
    assert dag.doc_md and "dags test" in dag.doc_md
    assert {"customer-warehouse", "nightly"} <= set(dag.tags)
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff, task.task_id


def test_every_source_is_loaded_before_dbt_and_gate_precedes_publish(dagbag):
    dag = dagbag.dags[DAG_ID]
    ids = set(dag.task_ids)
    sources = ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files")
    for s in sources:
        assert {f"{s}_units", f"{s}_load"} <= ids
        assert "dbt_build" in dag.get_task(f"{s}_load").downstream_task_ids
    assert dag.get_task("dbt_build").trigger_rule == "none_failed"  # a skipped source does not block
    assert dag.get_task("quality_gate").upstream_task_ids == {"dbt_build"}
    assert dag.get_task("publish").upstream_task_ids == {"quality_gate"}
    # per-account API quotas: one amoCRM / Bitrix24 unit at a time, the rest up to four in parallel
    assert dag.get_task("amocrm_load").max_active_tis_per_dagrun == 1
    assert dag.get_task("bitrix24_load").max_active_tis_per_dagrun == 1
    assert dag.get_task("metrica_load").max_active_tis_per_dagrun == 4
    outlets = {o.name for o in dag.get_task("publish").outlets}
    assert "marts.customer_profitability" in outlets and "marts.customer_churn" in outlets


def test_parsing_imports_nothing_heavy():
    """No dbt, GX, pandas, database driver or our sources at parse time."""
    code = (
        "import sys, json, runpy; runpy.run_path(sys.argv[1]); "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dbt', 'great_expectations', 'pandas', 'psycopg', 'customer_warehouse', 'scipy'))))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "dags" / "customer_warehouse_nightly.py")],
                         capture_output=True, text=True, check=True)
    heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert heavy == []


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (dt.datetime(2026, 11, 20, tzinfo=dt.UTC), dt.date(2026, 11, 20)),  # `dags test … 2026-11-20`
        (pendulum.datetime(2026, 11, 20, 2, tz="Europe/Moscow"), dt.date(2026, 11, 20)),  # scheduled run's start
        (dt.datetime(2026, 11, 19, 21, 30, tzinfo=dt.UTC), dt.date(2026, 11, 20)),  # 00:30 in Moscow
        ("2026-11-20", dt.date(2026, 11, 20)),
    ],
)
def test_business_day(moment, expected):
    from customer_warehouse.pipeline import business_day

    assert business_day(moment, "Europe/Moscow") == expected


def test_scheduled_run_loads_the_previous_day(dagbag):
    """The run that starts at 02:00 on the 21st has the 20th as its logical date."""
    from airflow.timetables.base import DataInterval, TimeRestriction
    from customer_warehouse.pipeline import business_day

    dag = dagbag.dags[DAG_ID]
    last = DataInterval(pendulum.datetime(2026, 11, 19, 2, tz="Europe/Moscow"),
                        pendulum.datetime(2026, 11, 20, 2, tz="Europe/Moscow"))
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=last,
                                          restriction=TimeRestriction(None, None, catchup=True))
    assert info.run_after == pendulum.datetime(2026, 11, 21, 2, tz="Europe/Moscow")
    assert business_day(info.logical_date) == dt.date(2026, 11, 20)
