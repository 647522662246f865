"""One real run of the nightly DAG: `airflow dags test` for one day, on a real PostgreSQL named by
``AIRFLOW_CONN_WAREHOUSE_DEFAULT``, fed by the tiny demo company through the emulators.

It asserts the outcome a user sees: rows in every raw schema, rows in every published mart,
the ledger balanced, the build schema swapped away, and revenue reconciling with the CRM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from customer_warehouse import local_airflow
from customer_warehouse.emulators import stack as emulator_stack

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("end_to_end")]

MARTS = ("customer_profitability", "whale_curve", "interaction_history", "customer_episodes",
         "customer_jobs", "jtbd_segments", "customer_churn", "customer_360", "customer_kpis")
RAW = ("raw_metrica.visits", "raw_metrica.search_phrases", "raw_amocrm.leads", "raw_amocrm.contacts",
       "raw_bitrix24.deals", "raw_crm_files.orders", "raw_surveys.responses")


def _conn_json(uri: str) -> str:
    """The test database as an Airflow connection (JSON form also carries socket paths)."""
    parts = urlsplit(uri)
    host = parts.hostname or parse_qs(parts.query).get("host", [""])[0]
    port = parts.port or int(parse_qs(parts.query).get("port", ["5432"])[0])
    return json.dumps({"conn_type": "postgres", "host": host, "port": port,
                       "login": parts.username or "postgres", "password": parts.password or "",
                       "schema": parts.path.lstrip("/")})


@pytest.fixture(scope="module")
def nightly_run(make_database, tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data, truth = root / "data", root / "truth"
    subprocess.run([sys.executable, "-m", "customer_warehouse.demo", "generate", "--out", str(data),
                    "--truth", str(truth), "--seed", "7", "--scale", "tiny"], check=True,
                   stdout=subprocess.DEVNULL)
    manifest = json.loads((data / "manifest.json").read_text())
    uri = make_database("cwe2e")
    stack = emulator_stack.start(data)
    home = root / "airflow"
    home.mkdir()
    env = local_airflow.airflow_env({
        **stack.connections(),
        "AIRFLOW_CONN_WAREHOUSE_DEFAULT": _conn_json(uri),
        "CW_TASK_RETRIES": "0",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home),
    })
    env.pop("CW_NO_AIRFLOW_LOOKUP", None)
    try:
        local_airflow.ensure_metadata_db(env)
        tasks: list[str] = []
        rc = local_airflow.dags_test(manifest["today"], env, root / "dags-test.log", tasks.append)
    finally:
        stack.stop()
    log = (root / "dags-test.log").read_text()
    assert rc == 0, log[-6000:]
    return {"uri": uri, "tasks": tasks, "env": env, "manifest": manifest, "truth": truth, "log": log}


def test_every_task_ran(nightly_run):
    ran = set(nightly_run["tasks"])
    for source in ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files"):
        assert f"{source}_load[0]" in ran, source
    assert {"dbt_build", "quality_gate", "publish"} <= ran


def test_raw_layer_is_loaded_and_balanced(nightly_run):
    with psycopg.connect(nightly_run["uri"]) as conn:
        for table in RAW:
            assert conn.execute(f"select count(*) from {table}").fetchone()[0] > 0, table
        bad = conn.execute("select source, entity from raw_meta.load_batches where status = 'loaded' "
                           "and rows_read <> rows_loaded + rows_quarantined").fetchall()
        assert bad == []


def test_every_mart_is_published(nightly_run):
    with psycopg.connect(nightly_run["uri"]) as conn:
        for mart in MARTS:
            assert conn.execute(f"select count(*) from marts.{mart}").fetchone()[0] > 0, mart
        assert conn.execute("select to_regnamespace('marts_build')").fetchone()[0] is None


def test_revenue_reconciles_with_won_deals(nightly_run):
    truth = nightly_run["truth"]
    with psycopg.connect(nightly_run["uri"]) as conn:
        mart_revenue = conn.execute("select sum(revenue) from marts.customer_profitability").fetchone()[0]
    reconciliation = json.loads((truth / "reconciliation.json").read_text()) \
        if (truth / "reconciliation.json").exists() else None
    if reconciliation is None:
        pytest.skip("the generator wrote no reconciliation figure")
    expected = reconciliation.get("total_won_revenue") or reconciliation.get("total")
    assert f"{mart_revenue:.2f}" == f"{float(expected):.2f}"


def test_the_warehouse_used_is_the_configured_one(nightly_run):
    """The run wrote to AIRFLOW_CONN_WAREHOUSE_DEFAULT, not to the embedded default."""
    assert "embedded PostgreSQL" not in nightly_run["log"]
    assert os.environ.get("AIRFLOW_CONN_WAREHOUSE_DEFAULT") is None  # the test did not leak it
