"""Write–audit–publish on a real PostgreSQL: a good build is swapped in and BI reads it without
personal data in clear; a blocked build leaves yesterday's marts readable and fires the alert;
a `warn` failure publishes with a warning; secrets never reach the logs."""

from __future__ import annotations

import logging
import shutil
import uuid

import psycopg
import pytest
from customer_warehouse.paths import expectations_dir
from customer_warehouse.publish import PublishBlocked, alerts, pii, publish, roles
from customer_warehouse.quality import sample
from customer_warehouse.quality.gate import run_gate
from customer_warehouse.quality.results import GateResult
from receivers import http_receiver

pytestmark = pytest.mark.integration
SCHEMAS = ("raw_crm_files", "marts_build")
KEY = "test-hmac-key-9f8e7d"
TOKEN = "987654:BOT-token-never-logged"


@pytest.fixture()
def prefix(warehouse_uri):
    """Unique role names on the shared server, dropped afterwards."""
    p = f"cwt{uuid.uuid4().hex[:8]}_"
    yield p
    with psycopg.connect(warehouse_uri, autocommit=True) as conn:
        roles.drop_roles(conn, p)


def as_bi(uri: str, prefix: str, query: str):
    with psycopg.connect(uri) as conn:
        conn.execute(f'set role "{prefix}bi_reader"')
        return conn.execute(query).fetchall()


def gate(uri, tmp_path, config_dir=None, schemas=("marts_build",)):
    return run_gate(uri, schemas, run_date="2026-11-20", docs_dir=tmp_path / "docs", config_dir=config_dir)


def test_good_build_is_published_and_bi_reads_it_deidentified(warehouse_uri, tmp_path, prefix, caplog):
    caplog.set_level(logging.DEBUG, logger="customer_warehouse")
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn)
    sent = []

    out = publish(warehouse_uri, run_date="2026-11-20", gate_result=gate(warehouse_uri, tmp_path).as_dict(),
                  role_prefix=prefix, hmac_key=KEY, alert=sent.append)

    assert out["status"] == "published" and out["row_counts"]["customer_profitability"] == 3
    assert out["deidentified"] == {"customer_360": ["name", "email", "phone", "birthday"]}
    assert sent == []  # nothing to warn about
    with psycopg.connect(warehouse_uri) as conn:
        schemas = {r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()}
        log_row = conn.execute("select status, row_counts->>'customer_360' from ops.publish_log").fetchall()
    assert "marts" in schemas and "marts_build" not in schemas and "marts_prev" not in schemas  # first publication
    assert log_row == [("published", "3")]

    assert as_bi(warehouse_uri, prefix, "select sum(revenue) from marts.customer_profitability") == [(3800,)]
    status = dict(as_bi(warehouse_uri, prefix, "select kind || '/' || item, status from marts.data_status"))
    assert status.get("publish/last_published") and status.get("quality/gate")
    assert as_bi(warehouse_uri, prefix, "select customer_id, job_id from marts.customer_360 order by 1")[0] == \
        ("c1", "home_espresso")
    deid = as_bi(warehouse_uri, prefix,
                 "select email, phone, name from marts.customer_360_deidentified where customer_id = 'c1'")[0]
    assert deid[0] == pii.token(KEY, "anna@example.ru") and "anna" not in "".join(deid)
    for forbidden in ("select email from marts.customer_360", "select * from marts.customer_360",
                      "select count(*) from raw_crm_files.orders", "select count(*) from int.int_orders_costed",
                      "select count(*) from raw_meta.load_batches"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_bi(warehouse_uri, prefix, forbidden)
    assert KEY not in caplog.text


def test_blocked_build_keeps_yesterdays_marts_and_alerts(warehouse_uri, tmp_path, prefix, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="customer_warehouse")
    orders = [*sample.ORDERS, ("o2", "c1", 500.00, 300.00), ("o5", "c3", -40.00, 10.00)]
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn, "marts")  # yesterday's published marts, readable by BI
        roles.ensure_roles(conn, prefix)
        roles.apply_grants(conn, prefix, pii={"customer_360": ["name", "email", "phone", "birthday"]})
        conn.commit()
        sample.load_orders(conn, orders)  # today: a duplicated order and a negative amount
        sample.build_marts(conn, revenue_shift=10.0)
    result = gate(warehouse_uri, tmp_path, schemas=SCHEMAS)

    with http_receiver() as (base, received):
        config = alerts.AlertConfig.from_env({"CW_ALERT_WEBHOOK_URL": f"{base}/hook",
                                              "CW_ALERT_TELEGRAM_API_BASE": base,
                                              "CW_ALERT_TELEGRAM_TOKEN": TOKEN,
                                              "CW_ALERT_TELEGRAM_CHAT_ID": "42"})
        with pytest.raises(PublishBlocked) as blocked:
            publish(warehouse_uri, run_date="2026-11-20", gate_result=result, role_prefix=prefix, hmac_key=KEY,
                    alert=lambda event: alerts.notify(event, config))

    message = str(blocked.value)
    assert "customer_profitability · revenue_reconciles: failed — observed 4290" in message
    assert "vs expected 4260" in message
    assert "raw_crm_files.orders · key_unique" in message and "raw_crm_files.orders · amount_range" in message
    hook = next(body for path, body in received if path == "/hook")
    assert hook["level"] == "error" and "revenue_reconciles" in hook["text"]
    assert hook["details"]["counts"]["blocking"] >= 3
    assert any(path == f"/bot{TOKEN}/sendMessage" for path, _ in received)
    # yesterday's marts: untouched and still readable by BI
    assert as_bi(warehouse_uri, prefix, "select sum(revenue) from marts.customer_profitability") == [(3800,)]
    with psycopg.connect(warehouse_uri) as conn:
        assert conn.execute("select count(*) from marts_build.customer_profitability").fetchone() == (3,)
        assert conn.execute("select status from ops.publish_log").fetchall() == [("blocked",)]
        stored = conn.execute("select count(*) from ops.quality_results where run_id = %s and status = 'failed' "
                              "and severity = 'block'", (result.run_id,)).fetchone()[0]
    assert stored >= 3
    assert TOKEN not in caplog.text and KEY not in caplog.text


def test_warn_severity_publishes_with_a_warning(warehouse_uri, tmp_path, prefix):
    config_dir = tmp_path / "expectations"
    shutil.copytree(expectations_dir(), config_dir, ignore=shutil.ignore_patterns("uncommitted"))
    severity = config_dir / "severity.yml"
    severity.write_text(severity.read_text().replace(
        "rules:\n", "rules:\n  - match: \"marts_build.customer_profitability.revenue_reconciles\"\n"
                    "    severity: warn\n", 1))
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn, revenue_shift=10.0)
    result = gate(warehouse_uri, tmp_path, config_dir)
    assert result.passed and [c.check for c in result.warnings] == ["revenue_reconciles"]
    sent = []

    out = publish(warehouse_uri, gate_result=result, role_prefix=prefix, hmac_key=KEY, alert=sent.append)

    assert out["status"] == "published" and out["warnings"] == [
        "marts_build.customer_profitability.revenue_reconciles"]
    assert len(sent) == 1 and sent[0]["level"] == "warning" and "revenue_reconciles" in sent[0]["text"]
    assert as_bi(warehouse_uri, prefix, "select sum(revenue) from marts.customer_profitability") == [(3830,)]


def test_previous_marts_stay_as_the_spare_until_a_build_takes_them(warehouse_uri, prefix):
    """The publication before keeps as marts_prev, where the next dbt build takes its incremental
    marts from (dbt_project/macros/carry_marts.sql); a spare no build took is replaced; BI never
    sees it."""
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn, "marts")  # yesterday's, published: BI reads it
        roles.ensure_roles(conn, prefix)
        roles.apply_grants(conn, prefix, pii={"customer_360": ["name", "email", "phone", "birthday"]})
        conn.execute("create schema marts_prev")
        conn.execute("create table marts_prev.untaken (x int)")  # the day before's, no build took it
        conn.commit()
        sample.build_marts(conn, revenue_shift=10.0)  # today's

    publish(warehouse_uri, gate_result=GateResult.new("2026-11-20"), role_prefix=prefix, hmac_key=KEY)

    with psycopg.connect(warehouse_uri) as conn:
        tables = {r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'marts_prev'").fetchall()}
        spare_revenue = conn.execute("select sum(revenue) from marts_prev.customer_profitability").fetchone()[0]
    assert "customer_profitability" in tables and "untaken" not in tables
    assert spare_revenue == 3800
    assert as_bi(warehouse_uri, prefix, "select sum(revenue) from marts.customer_profitability") == [(3830,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        as_bi(warehouse_uri, prefix, "select sum(revenue) from marts_prev.customer_profitability")
