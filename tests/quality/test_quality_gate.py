"""The quality gate on a real PostgreSQL: a consistent build passes; a broken batch and a mart that
does not reconcile fail with table, check, observed and expected; results land in ops; Data Docs
are built; the connection string (with its password) is written nowhere."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from customer_warehouse.quality import sample
from customer_warehouse.quality.config import load_severity, mart_specs, raw_specs
from customer_warehouse.quality.gate import run_gate

pytestmark = pytest.mark.integration
SCHEMAS = ("raw_crm_files", "marts_build")


def _with_password(uri: str, password: str) -> str:
    parts = urlsplit(uri)
    netloc = parts.netloc.replace("@", f":{password}@", 1) if "@" in parts.netloc else parts.netloc
    return urlunsplit(parts._replace(netloc=netloc))


def by_id(result):
    return {c.check_id: c for c in result.checks}


def test_config_builds_checks_with_severities():
    specs, freshness = raw_specs()
    orders = next(s for s in specs if s.qualified == "raw_crm_files.orders")
    names = {c.name for c in orders.checks}
    assert {"columns_present", "key_unique", "amount_range", "ledger_rows_match", "ledger_batches_known"} <= names
    assert any(c.name == "freshness__raw_crm_files__orders" for c in freshness)
    marts = {s.table: s for s in mart_specs()}
    recon = next(c for c in marts["customer_profitability"].checks if c.name == "revenue_reconciles")
    assert "int.int_orders_costed" in recon.params["query"]  # the reference is spliced in
    severity = load_severity()
    assert severity.of("raw_meta.load_batches.freshness__raw_amocrm__leads") == "warn"
    assert severity.of("marts_build.customer_profitability.revenue_reconciles") == "block"


def test_good_build_passes_and_is_recorded(warehouse_uri, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    secret_uri = _with_password(warehouse_uri, "s3cret-db-pw")
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)

    result = run_gate(secret_uri, SCHEMAS, run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert result.passed, result.summary()
    checks = by_id(result)
    assert checks["marts_build.customer_profitability.revenue_reconciles"].status == "passed"
    assert checks["marts_build.whale_curve.ends_at_100_percent"].status == "passed"
    assert checks["raw_crm_files.orders.ledger_rows_match"].status == "passed"
    assert checks["raw_meta.load_batches.freshness__raw_crm_files__orders"].status == "passed"
    # a mart that is not built yet is tolerated with a clear message
    assert checks["marts_build.customer_kpis.table_exists"].status == "skipped"
    assert "does not exist" in checks["marts_build.customer_kpis.table_exists"].observed
    assert Path(result.docs_index).is_file() and result.docs_index.endswith("index.html")
    with psycopg.connect(warehouse_uri) as conn:
        stored = conn.execute("select count(*), count(*) filter (where status = 'passed') from ops.quality_results "
                              "where run_id = %s", (result.run_id,)).fetchone()
    assert stored[0] == len(result.checks) and stored[1] > 20
    # the password reached GX only through substitution: not in logs, not in any file GX wrote
    assert "s3cret-db-pw" not in caplog.text
    from customer_warehouse.paths import expectations_dir
    written = [p for p in (expectations_dir() / "uncommitted").rglob("*") if p.is_file()]
    written += [p for p in (tmp_path / "docs").rglob("*") if p.is_file()]
    assert written and not any("s3cret-db-pw" in p.read_text(errors="ignore") for p in written)


def test_broken_batch_and_unreconciled_mart_block(warehouse_uri, tmp_path):
    orders = [*sample.ORDERS, ("o2", "c1", 500.00, 300.00), ("o5", "c3", -40.00, 10.00)]  # dup key, negative
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn, orders)
        sample.build_marts(conn, revenue_shift=10.0)  # every customer +10: Σ no longer reconciles
        # rows without a ledger entry: written around RawBatch
        conn.execute("update raw_crm_files.orders set _batch_id = gen_random_uuid() where order_id = 'o4'")
        # a customer in two jobs, and a whale curve that stops short of 100%
        conn.execute("insert into marts_build.customer_jobs values ('c1', 'gift', 'Gift', 0.4, 'survey')")
        conn.execute("update marts_build.whale_curve set cumulative_profit_share = 0.97 where customer_share = 1")
        conn.commit()

    result = run_gate(warehouse_uri, SCHEMAS, run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert not result.passed
    checks = by_id(result)
    dup = checks["raw_crm_files.orders.key_unique"]
    assert dup.status == "failed" and dup.severity == "block" and "'o2'" in dup.observed
    neg = checks["raw_crm_files.orders.amount_range"]
    assert neg.status == "failed" and "-40" in neg.observed and "[0, +∞]" in neg.expected
    recon = checks["marts_build.customer_profitability.revenue_reconciles"]
    assert recon.status == "failed" and recon.blocking
    # Σ won orders = 3800 + 500 (duplicate) − 40 = 4260; the mart adds 10 to each of 3 customers
    assert float(recon.details["sample"][0]["observed"]) == pytest.approx(4290.0)
    assert float(recon.details["sample"][0]["expected"]) == pytest.approx(4260.0)
    assert "4290" in recon.observed and "4260" in recon.observed
    assert checks["raw_crm_files.orders.ledger_batches_known"].status == "failed"
    summary = result.summary()
    assert "BLOCKED" in summary and "customer_profitability · revenue_reconciles" in summary
    assert checks["marts_build.customer_jobs.key_unique"].status == "failed"
    assert "'c1'" in checks["marts_build.customer_jobs.key_unique"].observed
    whale = checks["marts_build.whale_curve.ends_at_100_percent"]
    assert whale.status == "failed" and "0.97 vs expected 1" in whale.observed
    # Σ segment customers (3) no longer equals the 4 customer_jobs rows
    assert checks["marts_build.jtbd_segments.customer_shares_sum_to_one"].status == "failed"
    # healthy checks are still reported as passed next to the failures
    assert checks["marts_build.customer_churn.p_alive_range"].status == "passed"


def test_a_gx_failure_blocks_and_is_recorded(warehouse_uri, tmp_path):
    import shutil

    from customer_warehouse.paths import expectations_dir

    config_dir = tmp_path / "expectations"
    shutil.copytree(expectations_dir(), config_dir, ignore=shutil.ignore_patterns("uncommitted"))
    yml = config_dir / "great_expectations.yml"
    yml.write_text(yml.read_text().replace("data_docs_sites:", "broken_sites:"))
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)

    result = run_gate(warehouse_uri, ("marts_build",), config_dir=config_dir, docs_dir=tmp_path / "docs")

    assert not result.passed
    recon = by_id(result)["marts_build.customer_profitability.revenue_reconciles"]
    assert recon.status == "error" and recon.observed.startswith("error: GX failed: KeyError")
    with psycopg.connect(warehouse_uri) as conn:
        errors = conn.execute("select count(*) from ops.quality_results where status = 'error'").fetchone()[0]
    assert errors == len([c for c in result.checks if c.status == "error"]) > 10



def test_failures_inside_one_suite_are_reported_one_by_one(warehouse_uri, tmp_path):
    """All checks of a table run as one GX suite on one batch: a failing query check and a failing
    row check next to passing ones each keep their own status, observed value and sample."""
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)
        conn.execute("update marts_build.customer_profitability set profit = profit + 1 where customer_id = 'c2'")
        conn.execute("update marts_build.customer_profitability set customer_share = 1.5 where customer_id = 'c3'")
        conn.commit()

    result = run_gate(warehouse_uri, ("marts_build",), run_date="2026-11-20", docs_dir=tmp_path / "docs")

    checks = {c.check: c for c in result.checks if c.table == "customer_profitability"}
    identity = checks["profit_identity"]
    # the query check: GX counts the offending rows (one query), the gate samples them for the message
    assert identity.status == "failed" and identity.details["gx"]["observed_value"] == 1
    assert identity.details["sample"][0]["customer_id"] == "c2" and "vs expected" in identity.observed
    share = checks["customer_share_range"]
    assert share.status == "failed" and "1 of 3 rows" in share.observed and "1.5" in share.observed
    assert {checks[n].status for n in ("revenue_reconciles", "revenue_range", "key_unique", "has_rows")} == {"passed"}
    assert checks["has_rows"].observed == "3"


def test_a_gx_failure_on_one_table_errors_only_its_checks(warehouse_uri, tmp_path, monkeypatch):
    from great_expectations.datasource.fluent.interfaces import Batch

    validate = Batch.validate

    def broken_for_whale_curve(self, expect, **kwargs):
        if self.data_asset.name == "marts_build.whale_curve":
            raise RuntimeError("connection lost")
        return validate(self, expect, **kwargs)

    monkeypatch.setattr(Batch, "validate", broken_for_whale_curve)
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)

    result = run_gate(warehouse_uri, ("marts_build",), run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert not result.passed
    whale = [c for c in result.checks if c.table == "whale_curve"]
    assert whale and all(c.status == "error" and "GX failed: RuntimeError: connection lost" in c.observed
                         for c in whale)
    assert by_id(result)["marts_build.customer_profitability.revenue_reconciles"].status == "passed"


def test_modules_deferred_at_gx_import_still_work_when_used():
    """scipy.stats and altair are stand-ins after the gate imports GX; the first use imports them."""
    import subprocess
    import sys

    code = (
        "import sys, math\n"
        "from customer_warehouse.quality import gate\n"
        "gate._import_gx()\n"
        "assert isinstance(sys.modules['scipy.stats'], gate._DeferredModule)\n"
        "assert isinstance(sys.modules['altair'], gate._DeferredModule)\n"
        "import inspect; inspect.stack()  # walks sys.modules: must not import them\n"
        "assert isinstance(sys.modules['scipy.stats'], gate._DeferredModule)\n"
        "from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl\n"
        "assert math.isclose(kl.stats.entropy([0.5, 0.5]), math.log(2))\n"
        "import scipy.stats\n"
        "assert not isinstance(sys.modules['scipy.stats'], gate._DeferredModule)\n"
        "assert scipy.stats.norm.cdf(0) == 0.5 and sys.modules['scipy'].stats is sys.modules['scipy.stats']\n"
        "from scipy.stats import norm\n"
        "assert kl.alt.Chart is __import__('altair').Chart\n"
        "assert not isinstance(sys.modules['altair'], gate._DeferredModule)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]

# -- batch-scoped raw checks ------------------------------------------------------------------------
NEW_ORDERS = [("o6", "c1", 250.00, 150.00), ("o7", "c2", 700.00, 400.00)]


def scope_of(check) -> dict:
    return check.details["scope"]


def _accept_history(uri: str, tmp_path) -> str:
    """Yesterday: a clean batch (unit ``a``) that a passing gate checked and accepted."""
    with psycopg.connect(uri) as conn:
        old = sample.load_orders(conn, unit="a")
        sample.build_marts(conn)
    first = run_gate(uri, SCHEMAS, run_date="2026-11-19", docs_dir=tmp_path / "docs")
    assert first.passed, first.summary()
    # nothing was accepted before it, so the first run read the whole table
    assert scope_of(by_id(first)["raw_crm_files.orders.amount_range"])["mode"] == "full"
    with psycopg.connect(uri) as conn:
        accepted = conn.execute("select batch_id::text, run_id::text from ops.quality_batches").fetchall()
    assert accepted == [(old, first.run_id)]
    return old


def test_nightly_checks_only_new_batches_and_the_full_audit_catches_old_drift(warehouse_uri, tmp_path):
    old = _accept_history(warehouse_uri, tmp_path)
    with psycopg.connect(warehouse_uri) as conn:
        # drift in accepted history, after its gate passed: a negative amount and an impossible date
        conn.execute("update raw_crm_files.orders set amount = -5 where order_id = 'o1'")
        conn.execute("update raw_crm_files.orders set ordered_at = '1990-01-01' where order_id = 'o3'")
        # a row written around the loader: its batch is in no ledger, so no night lists it
        conn.execute("insert into raw_crm_files.orders (unit, order_id, customer_id, ordered_at, amount, status, "
                     "record, row_number, _batch_id) values ('c', 'o9', 'c1', now(), 10, 'lost', '{}', 1, "
                     "gen_random_uuid())")
        conn.commit()
        new = sample.load_orders(conn, NEW_ORDERS, unit="b")  # tonight: a clean batch of another export
        sample.build_marts(conn)

    nightly = run_gate(warehouse_uri, SCHEMAS, run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert nightly.passed, nightly.summary()
    checks = by_id(nightly)
    amount = checks["raw_crm_files.orders.amount_range"]
    assert amount.status == "passed" and "250" in amount.observed  # min over tonight's rows only
    assert scope_of(amount) == {"mode": "batches", "rows": 2, "batches": 1, "batch_ids": [new]}
    assert checks["raw_crm_files.orders.ordered_at_window"].status == "passed"
    assert checks["raw_crm_files.orders.key_unique_history"].status == "passed"
    with psycopg.connect(warehouse_uri) as conn:
        stored = conn.execute(
            "select details->'scope'->>'mode', details->'scope'->>'rows', details->'scope'->'batch_ids'->>0 "
            "from ops.quality_results where run_id = %s and check_id = 'raw_crm_files.orders.amount_range'",
            (nightly.run_id,)).fetchone()
        # marts are always read whole: no scope on their results
        mart_scope = conn.execute(
            "select count(*) from ops.quality_results where run_id = %s and schema_name = 'marts_build' "
            "and details ? 'scope'", (nightly.run_id,)).fetchone()[0]
        accepted = {r[0] for r in conn.execute("select batch_id::text from ops.quality_batches")}
        leftovers = conn.execute("select count(*) from pg_tables where schemaname = 'quality_scope'").fetchone()[0]
    assert stored == ("batches", "2", new) and mart_scope == 0
    assert accepted == {old, new} and leftovers == 0

    # a night with nothing new for the table: its checks have nothing to read
    quiet = by_id(run_gate(warehouse_uri, SCHEMAS, run_date="2026-11-21", docs_dir=tmp_path / "docs"))
    assert quiet["raw_crm_files.orders.amount_range"].status == "skipped"
    assert scope_of(quiet["raw_crm_files.orders.amount_range"])["rows"] == 0

    audit = run_gate(warehouse_uri, SCHEMAS, run_date="2026-11-22", docs_dir=tmp_path / "docs", full=True)

    assert not audit.passed
    checks = by_id(audit)
    amount = checks["raw_crm_files.orders.amount_range"]
    assert amount.status == "failed" and "-5" in amount.observed
    assert scope_of(amount) == {"mode": "full", "rows": 7, "batches": 3, "reason": "full audit"}
    window = checks["raw_crm_files.orders.ordered_at_window"]
    assert window.status == "failed" and "'o3'" in window.observed
    assert checks["raw_crm_files.orders.key_unique_history"].status == "skipped"  # key_unique covers it
    assert checks["raw_crm_files.orders.ledger_batches_known"].status == "failed"


def test_defects_in_tonights_batch_block_but_old_history_is_not_reported(warehouse_uri, tmp_path):
    _accept_history(warehouse_uri, tmp_path)
    tonight = [("o6", "c1", 250.00, 150.00), ("o6", "c1", 250.00, 150.00),  # duplicated within the batch
               ("o1", "c2", 90.00, 50.00),  # a key an accepted batch already holds
               ("o8", "c3", -40.00, 10.00),  # negative amount
               (None, "c3", 60.00, 20.00)]  # no key
    with psycopg.connect(warehouse_uri) as conn:
        conn.execute("update raw_crm_files.orders set amount = -5 where order_id = 'o2'")  # old drift
        conn.commit()
        new = sample.load_orders(conn, tonight, unit="b")
        conn.execute("update raw_crm_files.orders set ordered_at = '2099-01-01' where order_id = 'o8'")  # bad date
        conn.commit()
        sample.build_marts(conn)

    result = run_gate(warehouse_uri, SCHEMAS, run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert not result.passed
    checks = by_id(result)
    dup = checks["raw_crm_files.orders.key_unique"]
    assert dup.status == "failed" and dup.blocking and "'o6'" in dup.observed
    taken = checks["raw_crm_files.orders.key_unique_history"]
    assert taken.status == "failed" and taken.blocking and taken.details["sample"][0]["order_id"] == "o1"
    amount = checks["raw_crm_files.orders.amount_range"]
    assert amount.status == "failed" and "-40" in amount.observed and "-5" not in amount.observed
    assert checks["raw_crm_files.orders.order_id_not_null"].status == "failed"
    window = checks["raw_crm_files.orders.ordered_at_window"]
    assert window.status == "failed" and "'o8'" in window.observed
    assert checks["raw_crm_files.orders.ledger_rows_match"].status == "passed"
    assert scope_of(amount) == {"mode": "batches", "rows": 5, "batches": 1, "batch_ids": [new]}
    with psycopg.connect(warehouse_uri) as conn:  # a blocked run accepts nothing: tomorrow re-checks it
        assert conn.execute("select count(*) from ops.quality_batches").fetchone()[0] == 1


def test_a_key_enforced_by_a_unique_index_is_relied_on(warehouse_uri, tmp_path):
    from customer_warehouse.loading import Column, RawBatch, RawTable

    # the shape the amoCRM loader upserts into: primary key (account, id), newest updated_at wins
    table = RawTable("raw_amocrm", "leads", [Column("account"), Column("id", "bigint"),
                                             Column("updated_at", "timestamptz"), Column("is_deleted", "boolean"),
                                             Column("record", "jsonb not null")],
                     key=("account", "id"), version_column="updated_at")
    with psycopg.connect(warehouse_uri) as conn:
        table.ensure(conn)
        with RawBatch(conn, "amocrm", "leads", unit="acme", mode="upsert") as batch:
            rows = [("acme", n, None, False, {"price": 100 * n}) for n in (1, 2, 3)]
            batch.read(len(rows))
            batch.upsert_rows(table, ["account", "id", "updated_at", "is_deleted", "record"], rows)
        conn.commit()

    result = run_gate(warehouse_uri, ("raw_amocrm",), run_date="2026-11-20", docs_dir=tmp_path / "docs")

    assert result.passed, result.summary()
    checks = by_id(result)
    for name in ("key_unique", "key_unique_history"):
        assert checks[f"raw_amocrm.leads.{name}"].status == "passed"
        assert checks[f"raw_amocrm.leads.{name}"].observed == \
            "enforced by unique index raw_amocrm.leads_pkey (account, id)"
    assert checks["raw_amocrm.leads.price_range"].status == "passed"


def test_a_marts_key_index_stands_in_for_the_scan_and_only_a_real_one_does(warehouse_uri, tmp_path):
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)
        # dbt's `indexes` config on the marts builds these; a partial or non-unique index proves nothing
        conn.execute("create unique index profitability_key on marts_build.customer_profitability (customer_id)")
        conn.execute("create index jobs_customer on marts_build.customer_jobs (customer_id)")
        conn.execute("create unique index jobs_partial on marts_build.customer_jobs (customer_id) "
                     "where job_id = 'nothing'")
        conn.execute("insert into marts_build.customer_jobs select * from marts_build.customer_jobs limit 1")

    result = run_gate(warehouse_uri, ("marts_build",), run_date="2026-11-20", docs_dir=tmp_path / "docs")

    checks = by_id(result)
    key = checks["marts_build.customer_profitability.key_unique"]
    assert key.status == "passed"
    assert key.observed == "enforced by unique index marts_build.profitability_key (customer_id)"
    jobs_key = checks["marts_build.customer_jobs.key_unique"]
    assert jobs_key.status == "failed" and "enforced" not in jobs_key.observed


def test_the_weekly_full_audit_day(monkeypatch):
    import datetime as dt

    from customer_warehouse.pipeline import FULL_AUDIT_WEEKDAY_ENV, full_audit_due

    sunday, friday = dt.date(2026, 11, 22), dt.date(2026, 11, 20)
    monkeypatch.delenv(FULL_AUDIT_WEEKDAY_ENV, raising=False)
    assert full_audit_due(sunday) and not full_audit_due(friday)
    monkeypatch.setenv(FULL_AUDIT_WEEKDAY_ENV, "5")
    assert full_audit_due(friday) and not full_audit_due(sunday)
    monkeypatch.setenv(FULL_AUDIT_WEEKDAY_ENV, "off")
    assert not full_audit_due(sunday)
    monkeypatch.setenv(FULL_AUDIT_WEEKDAY_ENV, "sunday")
    with pytest.raises(ValueError, match="ISO weekday"):
        full_audit_due(sunday)
