"""Roles, grants and de-identification without running GX: idempotent roles, passwords only from
the environment (never logged), the loader/transformer split, identical tokens from pgcrypto and
the Python fallback, and a publish that fails mid-way leaving the old marts in place."""

from __future__ import annotations

import logging
import uuid

import psycopg
import pytest
from customer_warehouse.publish import PublishBlocked, pii, publish, roles
from customer_warehouse.quality import GateResult, sample
from psycopg import sql

pytestmark = pytest.mark.integration


@pytest.fixture()
def prefix(warehouse_uri):
    p = f"cwt{uuid.uuid4().hex[:8]}_"
    yield p
    with psycopg.connect(warehouse_uri, autocommit=True) as conn:
        roles.drop_roles(conn, p)


def test_roles_are_idempotent_and_log_in_only_with_a_password(wh, prefix, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    roles.ensure_roles(wh, prefix)
    monkeypatch.setenv("CW_BI_READER_PASSWORD", "bi-pass-never-logged")
    names = roles.ensure_roles(wh, prefix)  # second run: no error, password applied
    wh.commit()
    login = dict(wh.execute("select rolname, rolcanlogin from pg_roles where rolname = any(%s)",
                            (list(names.values()),)).fetchall())
    assert login == {f"{prefix}loader": False, f"{prefix}transformer": False, f"{prefix}bi_reader": True}
    assert "bi-pass-never-logged" not in caplog.text


def test_a_role_created_concurrently_by_another_publish_is_not_an_error(warehouse_uri, prefix):
    """Roles are cluster-wide, so a publish into another database can create one between our check
    and our CREATE ROLE; PostgreSQL then fails ours on pg_authid's unique index."""
    import threading

    names = roles.role_names(prefix)
    outcome = {}
    with psycopg.connect(warehouse_uri) as other:
        other.execute(sql.SQL("create role {} nologin").format(sql.Identifier(names["loader"])))  # not committed

        def publish_side():
            with psycopg.connect(warehouse_uri) as conn:
                try:
                    outcome["names"] = roles.ensure_roles(conn, prefix)  # sees no role, blocks on the insert
                    conn.commit()
                except Exception as err:  # surfaced by the assertion below
                    outcome["error"] = err

        worker = threading.Thread(target=publish_side)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive(), "ensure_roles should wait for the other transaction's CREATE ROLE"
        other.commit()
    worker.join(timeout=30)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["names"] == names


def test_loader_writes_raw_transformer_reads_it_bi_sees_neither(wh, prefix):
    sample.load_orders(wh)
    roles.ensure_roles(wh, prefix)
    roles.apply_grants(wh, prefix)
    wh.commit()
    wh.execute(f'set role "{prefix}loader"')
    wh.execute("delete from raw_crm_files.orders where order_id = 'o4'")
    wh.execute(f'set role "{prefix}transformer"')
    assert wh.execute("select count(*) from raw_crm_files.orders").fetchone() == (3,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        wh.execute("delete from raw_crm_files.orders")
    wh.rollback()
    wh.execute(f'set role "{prefix}bi_reader"')
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        wh.execute("select count(*) from raw_crm_files.orders")
    wh.rollback()


@pytest.mark.parametrize("in_db", [True, False])
def test_pgcrypto_and_python_tokens_agree(wh, in_db):
    wh.execute("create schema m; create table m.c (customer_id text, email text, city text)")
    wh.execute("insert into m.c values ('c1', 'anna@example.ru', 'Москва'), ('c2', null, 'Тула')")
    wh.execute("create table m.customer_source_keys (customer_id text, source text, source_key text)")
    assert pii.pii_columns(wh, "m") == {"c": ["email"], "customer_source_keys": ["source_key"]}
    pii._add_hmac(wh, "m", "c", "email", "k3y", in_db=in_db and pii._pgcrypto(wh))
    pii._view(wh, "m", "c", ["email"], tokenised=True)
    rows = wh.execute("select customer_id, email, city from m.c_deidentified order by 1").fetchall()
    assert rows == [("c1", pii.token("k3y", "anna@example.ru"), "Москва"), ("c2", None, "Тула")]


def test_publish_failure_midway_keeps_old_marts(warehouse_uri, prefix):
    with psycopg.connect(warehouse_uri) as conn:
        sample.load_orders(conn)
        sample.build_marts(conn, "marts")  # yesterday's; no marts_build today (dbt did not run)
    alerts_sent = []
    with pytest.raises(PublishBlocked, match="build schema 'marts_build' does not exist"):
        publish(warehouse_uri, gate_result=GateResult.new("2026-11-20"), role_prefix=prefix, hmac_key="k",
                alert=alerts_sent.append)
    assert alerts_sent and alerts_sent[0]["title"] == "Marts not published: publish failed"
    with psycopg.connect(warehouse_uri) as conn:
        assert conn.execute("select count(*) from marts.customer_profitability").fetchone() == (3,)
        assert conn.execute("select status from ops.publish_log").fetchall() == [("failed",)]
