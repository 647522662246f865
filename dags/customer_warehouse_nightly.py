"""Nightly customer-analytics pipeline: sources → raw → dbt → quality gate → publish.

Wiring only: every task calls a function of ``customer_warehouse.pipeline``, imported inside
the task so that parsing this file stays cheap (no database, network, dbt or GX at import).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.interval import CronDataIntervalTimetable

TZ = os.environ.get("CW_TIMEZONE", "Europe/Moscow")
SCHEDULE = os.environ.get("CW_NIGHTLY_CRON", "0 2 * * *")
SOURCES = ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files")
# Their quota is per account while the clients pace themselves per process: units of these run one
# at a time, so parallel workers never add up to more than the vendor allows (amoCRM blocks the
# whole account on repeated 429s).
ONE_AT_A_TIME = ("amocrm", "bitrix24")
MARTS = ("customer_profitability", "whale_curve", "interaction_history", "customer_episodes",
         "customer_jobs", "jtbd_segments", "customer_churn", "customer_360", "customer_kpis")

DOC = """
### Customer warehouse, nightly

Loads the business day of the run's logical date (a scheduled run at 02:00 loads yesterday;
`airflow dags test customer_warehouse_nightly 2026-11-20` loads 2026-11-20) from every source
that has an Airflow connection, builds the marts with dbt into `marts_build`, validates them
with Great Expectations, and only then swaps them into `marts`, the schema BI reads.

* Sources without a connection are skipped (logged); each source is mapped over its units
  (Metrica counters, CRM accounts, forms) and loaded in parallel.
* First run on an empty warehouse, or the `full_refresh` param, loads the whole history.
* A failed gate leaves yesterday's marts in place and fails the run with a summary.
* The gate checks raw tables on the batches loaded since its last pass; on Sundays
  (`CW_GATE_FULL_AUDIT_WEEKDAY`) or with the `gate_full_audit` param it audits whole raw tables.
"""

default_args = {
    "owner": "data-engineering",
    # `make demo` sets CW_TASK_RETRIES=0 so a broken run fails at once instead of waiting out retries
    "retries": int(os.environ.get("CW_TASK_RETRIES", "3")),
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}


def _day() -> str:
    from customer_warehouse.pipeline import business_day

    ctx = get_current_context()
    moment = ctx.get("logical_date") or ctx.get("data_interval_start") or ctx["dag_run"].run_after
    return business_day(moment).isoformat()


@dag(
    dag_id="customer_warehouse_nightly",
    schedule=CronDataIntervalTimetable(SCHEDULE, timezone=TZ),
    start_date=pendulum.datetime(2026, 1, 1, tz=TZ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["customer-warehouse", "nightly", "marts"],
    doc_md=DOC,
    params={"full_refresh": Param(False, type="boolean", description="Reload all history and rebuild"),
            "gate_full_audit": Param(False, type="boolean",
                                     description="Quality gate over whole raw tables, not only tonight's batches")},
)
def customer_warehouse_nightly():
    @task
    def units(source: str) -> list[str]:
        from customer_warehouse.pipeline import list_units

        return list_units(source)

    @task
    def extract_load(source: str, unit: str) -> dict:
        from customer_warehouse.pipeline import extract_load as run

        full = bool(get_current_context()["params"].get("full_refresh"))
        return run(source, unit, _date(_day()), full=full)

    @task(trigger_rule="none_failed")
    def dbt_build() -> dict:
        from customer_warehouse.pipeline import transform

        full = bool(get_current_context()["params"].get("full_refresh"))
        return transform(_date(_day()), full_refresh=full)

    @task
    def quality_gate() -> dict:
        from customer_warehouse.pipeline import quality_gate as gate

        full = bool(get_current_context()["params"].get("gate_full_audit"))
        return gate(_date(_day()), full=full)

    @task(outlets=[Asset(name=f"marts.{m}", uri=f"postgres://warehouse:5432/warehouse/marts/{m}") for m in MARTS])
    def publish(gate_result: dict) -> dict:
        from customer_warehouse.pipeline import publish as run

        return run(_date(_day()), gate_result)

    loads = []
    for source in SOURCES:
        found = units.override(task_id=f"{source}_units")(source)
        limit = 1 if source in ONE_AT_A_TIME else 4
        load = extract_load.override(task_id=f"{source}_load", max_active_tis_per_dagrun=limit)
        loads.append(load.partial(source=source).expand(unit=found))

    built = dbt_build()
    gate = quality_gate()
    loads >> built >> gate
    publish(gate)


def _date(day: str):
    import datetime

    return datetime.date.fromisoformat(day)


customer_warehouse_nightly()
