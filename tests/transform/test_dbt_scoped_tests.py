"""The data tests on the large facts check tonight's batches only (rows of batches the quality gate
has not accepted), and the whole history with ``dbt_test_scope: all`` (the full-audit day).

A visit without a time is landed in a batch: while the gate has not accepted that batch the
nightly tests fail on it; once accepted, the nightly tests no longer read it, the full audit does.
"""

from __future__ import annotations

import psycopg
import pytest
from customer_warehouse.loading.tables import ensure_meta_schema
from customer_warehouse.quality.results import OPS_DDL
from customer_warehouse.transform.dbt import dbt_vars, run_dbt
from small_raw import RUN_DATE, dsn_from_uri, load_small_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TEST = "not_null_stg_metrica__visits_visited_at"
BAD_BATCH = "33333333-3333-3333-3333-333333333333"


def _visit_tests(dsn, artifacts, scope: str) -> dict[str, str]:
    out = run_dbt(dsn, "build", ["--select", "stg_metrica__visits"],
                  variables=dbt_vars(RUN_DATE, extra={"dbt_test_scope": scope}), artifacts_dir=artifacts)
    return {n["unique_id"].split(".")[2]: n["status"].lower() for n in out["results"] if n["unique_id"].startswith("test.")}


@pytest.fixture(scope="module")
def warehouse(make_database, tmp_path_factory):
    uri = make_database("cwscope")
    load_small_raw(uri)
    with psycopg.connect(uri) as conn:
        ensure_meta_schema(conn)
        conn.execute(OPS_DDL)
        # everything landed so far: an earlier night's batches, accepted by its gate
        conn.execute("insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, "
                     "finished_at) values (gen_random_uuid(), 'test', 'initial', 'full', 'loaded', "
                     "now() - interval '30 days', now() - interval '30 days')")
        conn.execute("insert into ops.quality_batches (batch_id, run_id, mode) "
                     "select batch_id, gen_random_uuid(), 'test' from raw_meta.load_batches")
        # tonight's batch: a visit Metrica sent without its time
        conn.execute("insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, "
                     "finished_at) values (%s, 'metrica', 'visits', 'incremental', 'loaded', now(), now())",
                     (BAD_BATCH,))
        conn.execute("insert into raw_metrica.visits (counter_id, visit_date, counter_timezone, visit_id, client_id, "
                     "date_time, _batch_id) values (555, '2026-11-01', 'Europe/Moscow', '9999', 'CID9', null, %s)",
                     (BAD_BATCH,))
    return uri, dsn_from_uri(uri), tmp_path_factory.mktemp("dbt")


def test_tonights_bad_row_fails_the_nightly_tests(warehouse):
    _, dsn, artifacts = warehouse
    statuses = _visit_tests(dsn, artifacts, "unaudited")
    assert any(name.startswith(TEST) and status == "fail" for name, status in statuses.items()), statuses


def test_accepted_batches_are_left_to_the_full_audit(warehouse):
    uri, dsn, artifacts = warehouse
    with psycopg.connect(uri) as conn:
        conn.execute("insert into ops.quality_batches (batch_id, run_id, mode) values (%s, gen_random_uuid(), 'test') "
                     "on conflict do nothing", (BAD_BATCH,))
    nightly = _visit_tests(dsn, artifacts, "unaudited")
    assert nightly and all(status == "pass" for status in nightly.values()), nightly
    audit = _visit_tests(dsn, artifacts, "all")
    assert any(name.startswith(TEST) and status == "fail" for name, status in audit.items()), audit


def test_web_visit_key_tests_read_the_visit_dates_tonight_replaced(warehouse):
    """int_web_visits_filtered's key holds the visit date: a duplicate's rows share a date, so the
    nightly tests read the dates tonight's unaccepted batches bring and still catch it there."""
    uri, dsn, artifacts = warehouse
    with psycopg.connect(uri) as conn:
        batch = conn.execute("insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, "
                             "finished_at) values (gen_random_uuid(), 'metrica', 'visits', 'incremental', 'loaded', "
                             "now(), now()) returning batch_id").fetchone()[0]
        conn.execute("insert into raw_metrica.visits (counter_id, visit_date, counter_timezone, visit_id, client_id, "
                     "date_time, _batch_id) values (555, '2026-08-21', 'Europe/Moscow', '9004', 'CID4', "
                     "'2026-08-21 12:00:00', %s)", (batch,))
    built = run_dbt(dsn, "build", ["--select", "int_web_visits_filtered"], variables=dbt_vars(RUN_DATE),
                    artifacts_dir=artifacts)
    assert built["success"], built

    def unique_status(scope: str) -> str:
        out = run_dbt(dsn, "test", ["--select", "int_web_visits_filtered"],
                      variables=dbt_vars(RUN_DATE, extra={"dbt_test_scope": scope}), artifacts_dir=artifacts)
        return next(n["status"].lower() for n in out["results"]
                    if n["unique_id"].startswith("test.customer_warehouse.unique_int_web_visits_filtered_visit_key"))

    def duplicate(visit_id: str) -> None:
        with psycopg.connect(uri) as conn:
            conn.execute("delete from int.int_web_visits_filtered where ctid not in "
                         "(select min(ctid) from int.int_web_visits_filtered group by visit_key)")
            conn.execute("insert into int.int_web_visits_filtered "
                         "select * from int.int_web_visits_filtered where visit_id = %s", (visit_id,))

    duplicate("9003")  # 2026-08-21: a date tonight's batch replaced
    assert unique_status("unaudited") == "fail"
    duplicate("9002")  # 2026-08-20: checked on the night that loaded it
    assert unique_status("unaudited") == "pass"
    assert unique_status("all") == "fail"
