"""The incremental models after a late change to raw: a nightly incremental build must give the
same marts (and the same incremental tables) as a full refresh of the same raw data.

The late changes are made the way the loaders make them, each in a load batch the ledger records
(raw_meta.load_batches, the rows' _loaded_at = the batch's finished_at): a Metrica re-pull replaces
a date range whole (a visit changed, one vanished, one new), the Bitrix24 deletion scan flags an
activity ``is_deleted`` in place, the CRM file export is re-read whole without one interaction, an
amoCRM note is upserted with new text, an amoCRM lead is won, an amoCRM user is renamed — and a long-running amoCRM
batch, started ten days ago, commits only now: its rows are older than everything the first build
read, which a look-back window on _loaded_at would miss.

The identity graph changes too, so the incremental resolution must merge, split and forget:
Anna's amoCRM contact loses its email (her Bitrix24 side and survey R1 split off), Bitrix24
contact 21 gains the email of survey R3's stranger (R3 joins Utro café), the re-read customer file
no longer holds F2 (F2, still named by an order, loses the phone that tied it to Anna) and survey
R2 is gone.

Between the nights the build is published, as the nightly does: interaction_history then builds
on the copy the publication before last left (macros/carry_marts.sql), two nights behind. The
first two nights run for the day before RUN_DATE; a quiet night for RUN_DATE then has only the run
date's move to apply (a file order dated RUN_DATE comes due with no file reload).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import psycopg
import pytest
from customer_warehouse.loading.tables import ensure_meta_schema
from customer_warehouse.publish import publish, roles
from customer_warehouse.quality.results import GateResult
from customer_warehouse.transform.dbt import build_all, run_build
from small_raw import ACC, MARTS, PORTAL, RUN_DATE, dsn_from_uri, load_small_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDER_COLUMNS = ("order_key, source, source_order_id, customer_id, title, status, is_won, amount, revenue, created_at, "
                 "closed_at, order_date, product, category, quantity, file_cost, manager_key, manager_name, "
                 "loss_reason, stage_name, pipeline_name, purpose, client_id, utm_source, utm_medium, "
                 "utm_campaign, utm_term")
SNAPSHOT_CHECK_COLUMNS = "order_key, status, stage_name, amount, manager_key, customer_id"
# marts → what must equal a full refresh (interaction_history's resolved_at is bookkeeping)
MART_COLUMNS = {table: "*" for table in MARTS} | {
    "interaction_history": "interaction_id, customer_id, deal_id, source, occurred_at, occurred_date, channel, "
                           "activity, direction, is_complaint, manager_key, manager_name, outcome"}

# built incrementally by customer (macros/customer_scope.sql)
CUSTOMER_LEVEL = ("int_job_evidence_collected", "int_customer_jobs_assigned", "int_customers_unified",
                  "int_cost_to_serve_aggregated", "int_customer_months")

# incremental tables → what must equal a full refresh: bookkeeping times differ, and the edges keep
# a gone record as an empty array (its tombstone) where a full build has no row
INCREMENTAL = {
    "stg_amocrm__leads": "*",
    "stg_amocrm__custom_field_values": "*",
    "stg_bitrix24__deals": "*",
    "int_interactions_unified": "*",
    "int_web_visits_filtered": "*",
    "int_client_first_visits": "*",
    "int_identity_edges_collected": "record_node, neighbours, rules_hash where cardinality(neighbours) > 0",
    "int_identity_nodes_resolved": "node_key, node_type, component_key",
    "int_customer_interactions_resolved": "interaction_key, customer_id, source, deal_key, occurred_at, "
                                          "occurred_date, channel, activity, is_complaint, direction, "
                                          "manager_key, manager_name, outcome, body_text",
    "int_orders_unified": ORDER_COLUMNS,
} | {table: "*" for table in CUSTOMER_LEVEL}

LATE_BATCH = "11111111-1111-1111-1111-111111111111"
LONG_BATCH = "22222222-2222-2222-2222-222222222222"
FILE_BATCH = "33333333-3333-3333-3333-333333333333"  # the CRM file export loaded again

# a night of its own before LATE_CHANGES: a lookup change makes int_orders_unified derive every
# order again, which would hide a scope that misses something in the night after it
USER_RENAMED = """
update raw_amocrm.users set record = jsonb_set(record, '{name}', '"Мария Старшая"'), _loaded_at = now()
where id = 501;
"""

LATE_CHANGES = f"""
insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, finished_at)
values ('{LATE_BATCH}', 'test', 'late changes', 'incremental', 'loaded', now(), now()),
    ('{LONG_BATCH}', 'amocrm', 'notes', 'history', 'loaded', now() - interval '10 days',
     now() - interval '10 days'),
    ('{FILE_BATCH}', 'crm_files', 'orders', 'snapshot', 'loaded', now(), now());
-- the long batch: a note that only appears now, stamped with its batch's (old) load time
insert into raw_amocrm.notes (account, entity_type, id, updated_at, record, _batch_id, _loaded_at)
select account, entity_type, 777, updated_at, jsonb_set(record, '{{id}}', '777'), '{LONG_BATCH}',
    now() - interval '10 days'
from raw_amocrm.notes where id = 2;
-- Metrica re-pull of 2026-08-20..21: 9002 now lands on /gifts, 9004 is new, 9003 vanished and
-- with it every visit of 2026-08-21
delete from raw_metrica.visits where visit_date between '2026-08-20' and '2026-08-21' and visit_id <> '9002';
update raw_metrica.visits set start_url = 'https://zernoipar.ru/gifts', _loaded_at = now() where visit_id = '9002';
insert into raw_metrica.visits (counter_id, visit_date, counter_timezone, visit_id, client_id, date_time,
    is_new_user, start_url, page_views, visit_duration, bounce, lastsign_traffic_source, _batch_id)
values (555, '2026-08-20', 'Europe/Moscow', '9004', 'CID1', '2026-08-20 09:00:00', '0',
    'https://zernoipar.ru/hobby', '2', '60', '0', 'direct', gen_random_uuid());
-- Bitrix24 deletion scan (loader.mark_deleted): in place, stamped with the scan's batch
update raw_bitrix24.activities set is_deleted = true, _loaded_at = now(), _batch_id = '{LATE_BATCH}' where id = 42;
-- the CRM file export re-read whole (a snapshot): I1 is gone
delete from raw_crm_files.interactions where interaction_id = 'I1';
update raw_crm_files.interactions set _loaded_at = now(), _batch_id = '{FILE_BATCH}';
-- an amoCRM note edited (upsert: new record, new load time)
update raw_amocrm.notes set record = jsonb_set(record, '{{params}}', '{{"text": "жалоба: зерно пережарено"}}'),
    _loaded_at = now() where id = 2;
-- an amoCRM lead won (an upsert: new record, new load time)
update raw_amocrm.leads set record = record || '{{"status_id": 142, "price": 7500, "closed_at": 1792051200}}',
    _loaded_at = now(), _batch_id = '{LATE_BATCH}'
where id = 3007;
-- Bitrix24: deal 32's amount corrected, deal 34 new (both upserts in the late batch)
update raw_bitrix24.deals set record = record || '{{"OPPORTUNITY": "9500.00"}}', _loaded_at = now(),
    _batch_id = '{LATE_BATCH}'
where id = 32;
create temp table deal_34 as select * from raw_bitrix24.deals where id = 31;
update deal_34 set id = 34, record = record || '{{"ID": "34", "TITLE": "Ручная кофемолка"}}', _loaded_at = now(),
    _batch_id = '{LATE_BATCH}';
insert into raw_bitrix24.deals select * from deal_34;
-- the CRM file export re-read whole (a snapshot): order O3 is gone, O2's amount corrected, O1 and
-- O4 swap customers (F2 stays named, now by O1); O5 is as it was
delete from raw_crm_files.orders where order_id = 'O3';
update raw_crm_files.orders set amount = 8200 where order_id = 'O2';
update raw_crm_files.orders set customer_id = case order_id when 'O1' then 'F2' else 'F1' end
where order_id in ('O1', 'O4', 'O7');
update raw_crm_files.orders set _loaded_at = now(), _batch_id = '{FILE_BATCH}';
-- identity: Anna's amoCRM contact without its email (an upsert)
update raw_amocrm.contacts set record = jsonb_set(record, '{{custom_fields_values}}', (
        select jsonb_agg(field) from jsonb_array_elements(record -> 'custom_fields_values') as field
        where field ->> 'field_name' <> 'Email')),
    _loaded_at = now(), _batch_id = '{LATE_BATCH}'
where id = 1001;
-- identity: Bitrix24 contact 21 gains the stranger's email
update raw_bitrix24.contacts set record = jsonb_set(record, '{{EMAIL}}', '[{{"ID": "5", "VALUE": "stranger@mail.ru"}}]'),
    _loaded_at = now(), _batch_id = '{LATE_BATCH}'
where id = 21;
-- identity: the customer file re-read without F2; survey R2 withdrawn
delete from raw_crm_files.customers where customer_id = 'F2';
update raw_crm_files.customers set name = 'Ирина Петровна' where customer_id = 'F4';
update raw_crm_files.customers set _loaded_at = now(), _batch_id = '{FILE_BATCH}';
delete from raw_surveys.responses where response_id = 'R2';
"""


def _age_raw(conn) -> None:
    """Make everything landed so far a month old, as if loaded by an earlier night's batch (in
    the ledger): an incremental run then reads only the late changes' batches."""
    ensure_meta_schema(conn)
    conn.execute("insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, "
                 "finished_at) values (gen_random_uuid(), 'test', 'initial', 'full', 'loaded', "
                 "now() - interval '30 days', now() - interval '30 days')")
    tables = conn.execute(
        "select table_schema, table_name from information_schema.columns "
        "where column_name = '_loaded_at' and table_schema like 'raw\\_%' and table_schema <> 'raw_meta'").fetchall()
    for schema, table in tables:
        conn.execute(f'update "{schema}"."{table}" set _loaded_at = _loaded_at - interval \'30 days\'')


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _schema(table: str) -> str:
    return "stg" if table.startswith("stg_") else "int"


def _built_once(uri: str, tmp_path_factory):
    """The small raw data, aged, built once for RUN_DATE: ``(uri, dsn, dbt artifacts dir)``."""
    load_small_raw(uri)
    with psycopg.connect(uri) as conn:
        _age_raw(conn)
    dsn, artifacts = dsn_from_uri(uri), tmp_path_factory.mktemp("dbt")
    build_all(dsn, RUN_DATE, artifacts_dir=artifacts)
    return uri, dsn, artifacts


def _except_both_ways(conn, left: str, right: str) -> tuple[int, int]:
    return conn.execute(
        f"select (select count(*) from (select * from {left} except all select * from {right}) a), "
        f"(select count(*) from (select * from {right} except all select * from {left}) b)").fetchone()


@pytest.fixture(scope="module")
def late_change(make_database, tmp_path_factory):
    uri = make_database("cwinc")
    load_small_raw(uri)
    with psycopg.connect(uri) as conn:
        # a call on Anna's Bitrix24 contact: when her sides split, it must follow that side
        conn.execute("create temp table call_43 as select * from raw_bitrix24.activities where id = 41")
        conn.execute("""update call_43 set id = 43,
            record = record || '{"ID": "43", "OWNER_TYPE_ID": "3", "OWNER_ID": "22"}'""")
        conn.execute("insert into raw_bitrix24.activities select * from call_43")
        # a deal won on 2026-11-15: the newest order date, so that the late night's scope must find
        # Anna's older deal 33 by her identity move, not among the orders of the newest day
        conn.execute("create temp table deal_35 as select * from raw_bitrix24.deals where id = 31")
        conn.execute("""update deal_35 set id = 35, record = record || '{"ID": "35", "DATE_MODIFY":
            "2026-11-15T12:00:00+03:00", "CLOSEDATE": "2026-11-15T12:00:00+03:00"}'""")
        conn.execute("insert into raw_bitrix24.deals select * from deal_35")
        # a file order dated RUN_DATE: the nights before it leave it out, the quiet night at RUN_DATE
        # (no file reload) must bring it in
        conn.execute("create temp table order_6 as select * from raw_crm_files.orders where order_id = 'O2'")
        conn.execute("update order_6 set order_id = 'O6', amount = 1234, ordered_at = '2026-11-20 12:00+03'")
        conn.execute("insert into raw_crm_files.orders select * from order_6")
        # a file customer of its own (F3) with a won order O7: the late night moves O7 to F1 while
        # F3's identity stays as it was, so only the order's row leaving names F3's customer
        conn.execute("create temp table customer_f3 as select * from raw_crm_files.customers where customer_id = 'F1'")
        conn.execute("update customer_f3 set customer_id = 'F3', name = 'Пётр', email = 'petr@mail.ru', "
                     "phone = '+7 (905) 111-22-33', type = 'b2c', row_number = 3")
        conn.execute("insert into raw_crm_files.customers select * from customer_f3")
        # and F4, who only changes her name on the late night: her card changes, no node moves
        conn.execute("update customer_f3 set customer_id = 'F4', name = 'Ирина', email = 'irina@mail.ru', "
                     "phone = '+7 (905) 444-55-66', row_number = 4")
        conn.execute("insert into raw_crm_files.customers select * from customer_f3")
        conn.execute("create temp table order_7 as select * from raw_crm_files.orders where order_id = 'O4'")
        conn.execute("update order_7 set order_id = 'O7', customer_id = 'F3', row_number = 7")
        conn.execute("insert into raw_crm_files.orders select * from order_7")
        # a call to F4 exactly six months before RUN_DATE: the quiet night's move of the run date takes
        # it out of customer_episodes' 6-month window, and since the mart's copy was built nothing
        # else touched F4 (the renamed amoCRM user derived every order again, but F4 has none)
        conn.execute("create temp table call_3 as select * from raw_crm_files.interactions where interaction_id = 'I1'")
        conn.execute("update call_3 set interaction_id = 'I3', customer_id = 'F4', occurred_at = '2026-05-20 12:00+03', "
                     "row_number = 3")
        conn.execute("insert into raw_crm_files.interactions select * from call_3")
        _age_raw(conn)
    dsn = dsn_from_uri(uri)
    artifacts = tmp_path_factory.mktemp("dbt")
    prefix = f"cwinc{uri.rsplit('_', 1)[-1][:8]}_"

    def published_night(run_date: dt.date = RUN_DATE) -> None:
        build_all(dsn, run_date, artifacts_dir=artifacts)
        publish(uri, run_date=run_date, gate_result=GateResult.new(run_date), role_prefix=prefix, hmac_key="k")

    day_before = RUN_DATE - dt.timedelta(days=1)
    published_night(day_before)
    with psycopg.connect(uri) as conn:
        before, first_night = conn.execute(
            "select count(*), max(resolved_at) from marts.interaction_history").fetchone()
        conn.execute("create schema incremental_result")
        conn.execute("create table incremental_result.first_resolution as "
                     "select node_key, component_key, resolved_at from int.int_identity_nodes_resolved")
        conn.execute(USER_RENAMED)
    published_night(day_before)  # a night with a renamed user; the first night's marts are now the spare
    published_night()  # a quiet night: only the run date moved
    with psycopg.connect(uri) as conn:
        conn.execute("create table incremental_result.due_night_orders as "
                     "select order_key from int.int_orders_unified where source = 'crm_file'")
        conn.execute("create table incremental_result.due_night_customers as select customer_id, reason "
                     "from int.int_customers_changed where run_date = %s", (RUN_DATE,))
        conn.execute("create table incremental_result.due_night_episodes as select customer_id, contacts_6m, "
                     "(select count(*) from int.int_customer_interactions_resolved as i "
                     " where i.customer_id = e.customer_id and i.channel <> 'stage_change' "
                     " and i.occurred_date > %s - interval '6 months') as expected_6m "
                     "from marts.customer_episodes as e", (RUN_DATE,))
        late_night_from = conn.execute("select clock_timestamp()").fetchone()[0]
        conn.execute("create table incremental_result.orders_before as "
                     "select order_key, unified_at from int.int_orders_unified")
        conn.execute(LATE_CHANGES)
    build_all(dsn, RUN_DATE, artifacts_dir=artifacts)  # the nightly: incremental
    with psycopg.connect(uri) as conn:
        # interaction_history was taken over from the first night, not rebuilt: rows no night changed kept it
        carried = conn.execute("select count(*) from marts_build.interaction_history where resolved_at = %s",
                               (first_night,)).fetchone()[0]
        assert 0 < carried < before
        assert conn.execute("select count(*) from pg_namespace where nspname = 'marts_prev'").fetchone() == (0,)
        conn.execute("create table incremental_result.snap_deal_stages as select * from snapshots.snap_deal_stages")
        conn.execute("create table incremental_result.late_night_customers as select customer_id, reason "
                     "from int.int_customers_changed where changed_at > %s", (late_night_from,))
        conn.execute("create table incremental_result.orders_after as "
                     "select order_key, unified_at from int.int_orders_unified")
        conn.execute("create table incremental_result.second_resolution as "
                     "select node_key, component_key, resolved_at from int.int_identity_nodes_resolved")
        for table, columns in MART_COLUMNS.items():
            conn.execute(f"create table incremental_result.{table} as select {columns} from marts_build.{table}")
        for table, columns in INCREMENTAL.items():
            select, _, where = columns.partition(" where ")
            conn.execute(f"create table incremental_result.{table} as select {select} from {_schema(table)}.{table} "
                         f"where {where or 'true'}")
    build_all(dsn, RUN_DATE, full_refresh=True, artifacts_dir=artifacts)
    yield uri, before
    with psycopg.connect(uri, autocommit=True) as conn:
        roles.drop_roles(conn, prefix)


def test_incremental_run_saw_the_late_changes(late_change):
    uri, before = late_change
    with psycopg.connect(uri) as conn:
        def one(query):
            return conn.execute(query).fetchone()[0]

        history = "incremental_result.interaction_history"
        # activity 42 and I1 are gone, note 777 is new
        assert one(f"select count(*) from {history}") == before - 2 + 1
        assert one(f"select count(*) from {history} where interaction_id in "
                   f"('bitrix24_activity:{PORTAL}:42', 'crm_file_interaction:I1')") == 0
        assert one(f"select is_complaint from {history} where interaction_id like 'amocrm_note:%:contacts:2'")
        assert one(f"select count(*) from {history} where interaction_id like 'amocrm_note:%:777'") == 1
        assert one("select count(*) from ops.transform_batches where model = 'int_interactions_unified' "
                   f"and batch_id in ('{LATE_BATCH}', '{LONG_BATCH}')") == 2
        assert one(f"select count(*) from {history} where source like 'amocrm%' "
                   "and manager_name is distinct from 'Мария Старшая'") == 0
        assert one("select (deal_status, price) = ('won', 7500) from incremental_result.stg_amocrm__leads "
                   "where lead_id = 3007")
        orders = "incremental_result.int_orders_unified"
        assert one(f"select (status, revenue) = ('won', 7500) from {orders} where source_order_id = '3007'")
        assert one(f"select amount from {orders} where order_key = 'bitrix24_deal:{PORTAL}:32'") == 9500
        assert one(f"select title from {orders} where order_key = 'bitrix24_deal:{PORTAL}:34'") == "Ручная кофемолка"
        assert one(f"select count(*) from {orders} where order_key = 'crm_file_order:O3'") == 0
        assert one(f"select amount from {orders} where order_key = 'crm_file_order:O2'") == 8200
        # the quiet night brought in the file order its run date made due, with no file reload
        assert one("select count(*) from incremental_result.due_night_orders "
                   "where order_key = 'crm_file_order:O6'") == 1
        assert one(f"select customer_id from {orders} where order_key = 'crm_file_order:O1'") == one(
            "select customer_id from int.int_customer_nodes_resolved where node_key = 'crm_file_customer:F2'")
        assert one(f"select customer_id from {orders} where order_key = 'crm_file_order:O4'") == one(
            f"select customer_id from {orders} where order_key = 'crm_file_order:O5'")
        # the re-read export's changed orders were derived again (O4 and O7 only because their customer
        # column changed: F1's node did not move, F2's did), and O6, which lies on the newest stored order day
        # (the run date's branch takes that day again); unchanged O5 kept its row
        rederived = conn.execute(
            "select a.order_key from incremental_result.orders_after as a "
            "join incremental_result.orders_before as b using (order_key) "
            "where a.unified_at <> b.unified_at and a.order_key like 'crm\\_file\\_order:%' "
            "order by 1").fetchall()
        assert [r[0] for r in rederived] == [
            "crm_file_order:O1", "crm_file_order:O2", "crm_file_order:O4", "crm_file_order:O6", "crm_file_order:O7"]
        assert one(f"select count(*) from {orders} where manager_key like 'amocrm%' "
                   "and manager_name is distinct from 'Мария Старшая'") == 0
        visits = "incremental_result.int_web_visits_filtered"
        assert sorted(r[0] for r in conn.execute(f"select visit_id from {visits}")) == ["9001", "9002", "9004"]
        assert one(f"select landing_path from {visits} where visit_id = '9002'") == "/gifts"


def test_identity_graph_merged_split_and_forgot_incrementally(late_change):
    uri, _ = late_change
    with psycopg.connect(uri) as conn:
        def components(table):
            return dict(conn.execute(f"select node_key, component_key from incremental_result.{table}").fetchall())

        first, second = components("first_resolution"), components("second_resolution")
        anna, anna_b24 = f"amocrm_contact:{ACC}:1001", f"bitrix24_contact:{PORTAL}:22"
        utro, r3 = f"bitrix24_company:{PORTAL}:11", "survey_response:yandex_forms:exit:R3"
        r2 = "survey_response:file:exit:R2"
        assert first[anna] == first[anna_b24] == first["crm_file_customer:F2"]
        assert first[utro] != first[r3] and r2 in first
        # split: the email and F2's phone were Anna's only ties; merge: R3 by the new email; forgot R2
        assert second[anna] != second[anna_b24] and second["crm_file_customer:F2"] not in (second[anna],
                                                                                          second[anna_b24])
        assert second[utro] == second[r3]
        assert r2 not in second
        # only the components the changes touched were resolved again: Romashka's nodes kept theirs
        resolved = dict(conn.execute(
            "select s.node_key, s.resolved_at > f.resolved_at from incremental_result.second_resolution as s "
            "join incremental_result.first_resolution as f using (node_key)").fetchall())
        assert resolved[anna] and resolved[utro] and resolved["crm_file_customer:F2"]
        assert not resolved[f"amocrm_company:{ACC}:2001"] and not resolved[f"amocrm_contact:{ACC}:1002"]
        # the call on Anna's Bitrix24 contact, loaded before and unchanged, moved with that side
        customer = conn.execute("select customer_id from incremental_result.int_customer_interactions_resolved "
                                f"where interaction_key = 'bitrix24_activity:{PORTAL}:43'").fetchone()[0]
        assert customer == md5(second[anna_b24]) != md5(first[anna_b24])
        # so did her Bitrix24 deal, unchanged itself
        customer = conn.execute("select customer_id from incremental_result.int_orders_unified "
                                f"where order_key = 'bitrix24_deal:{PORTAL}:33'").fetchone()[0]
        assert customer == md5(second[anna_b24])


def test_customer_level_models_recomputed_only_the_changed_customers(late_change):
    """int_customers_changed logs the customers a night's changes touched, including the ones rows
    left; the customer-level models recompute just those (their tables equal a full refresh: the
    parametrised tests below)."""
    uri, _ = late_change
    with psycopg.connect(uri) as conn:
        def logged(table):
            rows = conn.execute(f"select customer_id, reason from incremental_result.{table}").fetchall()
            return {customer for customer, _ in rows}, rows

        first = dict(conn.execute("select node_key, component_key from incremental_result.first_resolution"))
        second = dict(conn.execute("select node_key, component_key from incremental_result.second_resolution"))
        customers = {r[0] for r in conn.execute("select customer_id from int.int_customers_unified")}
        anna, anna_b24 = f"amocrm_contact:{ACC}:1001", f"bitrix24_contact:{PORTAL}:22"
        utro = f"bitrix24_company:{PORTAL}:11"

        late, rows = logged("late_night_customers")
        # the split: the customer Anna was and both she and her Bitrix24 side are now; the merge
        assert {md5(first[anna]), md5(second[anna]), md5(second[anna_b24]), md5(second[utro])} <= late, rows
        # O4 moved from F2's customer to F1's: the file order's row left F2's, which the log names
        # O7 moved from F3 to F1 and F3's node stayed: the row leaving names F3's customer (and so does
        # F3's record, read again with the export)
        petr = md5(second["crm_file_customer:F3"])
        assert {r for r in rows if r[0] == petr} == {(petr, "left"), (petr, "records")}
        # F4 renamed herself: her record, read again with the export, names her customer (so does her
        # call, which the re-read export's interactions bring in again)
        irina = md5(second["crm_file_customer:F4"])
        assert (irina, "records") in rows
        assert conn.execute("select name from incremental_result.int_customers_unified where customer_id = %s",
                            (irina,)).fetchone() == ("Ирина Петровна",)

        due, rows = logged("due_night_customers")
        # the quiet night: O6 came due for its customer, and far fewer than everyone was recomputed
        o6_customer = conn.execute("select customer_id from int.int_orders_unified "
                                   "where order_key = 'crm_file_order:O6'").fetchone()[0]
        assert o6_customer in due and len(due & customers) < len(customers), rows
        # I3 left F4's 6-month window: the night's move of the run date, which the log does not name
        assert irina not in due, rows
        assert conn.execute("select contacts_6m, expected_6m from incremental_result.due_night_episodes "
                            "where customer_id = %s", (irina,)).fetchone() == (0, 0)
        assert conn.execute("select count(*) from incremental_result.due_night_episodes "
                            "where contacts_6m <> expected_6m").fetchone() == (0,)



def test_deal_snapshot_recorded_the_nights_changes(late_change):
    """snap_deal_stages compares only the orders int_orders_unified derived again: its current rows
    must still be every order as a full refresh derives it, and the changed ones keep history."""
    uri, _ = late_change
    with psycopg.connect(uri) as conn:
        current = (f"(select {SNAPSHOT_CHECK_COLUMNS} from incremental_result.snap_deal_stages "
                   "where dbt_valid_to is null and order_key in (select order_key from int.int_orders_unified)) as s")
        full = f"(select {SNAPSHOT_CHECK_COLUMNS} from int.int_orders_unified) as o"
        assert _except_both_ways(conn, current, full) == (0, 0)
        versions = conn.execute("select status, dbt_valid_to is null from incremental_result.snap_deal_stages "
                                "where source_order_id = '3007' order by dbt_valid_from").fetchall()
        assert versions == [("open", False), ("won", True)]
        anna_deal = conn.execute("select count(*) from incremental_result.snap_deal_stages "
                                 f"where order_key = 'bitrix24_deal:{PORTAL}:33'").fetchone()[0]
        assert anna_deal == 2  # her customer changed
        # the lookups of its scoped comparison (macros/snapshot_scope.sql); snap_customers, whose
        # query returns every customer, does not opt in
        indexes = dict(conn.execute("select tablename, array_agg(indexname::text order by indexname) "
                                    "from pg_indexes where schemaname = 'snapshots' group by 1").fetchall())
        assert indexes.get("snap_deal_stages") == ["snap_deal_stages_current_version", "snap_deal_stages_scd_id"]
        assert "snap_customers" not in indexes


@pytest.mark.parametrize("table", MARTS)
def test_incremental_mart_equals_full_refresh(late_change, table):
    uri, _ = late_change
    with psycopg.connect(uri) as conn:
        full = f"(select {MART_COLUMNS[table]} from marts_build.{table}) as full_refresh"
        assert _except_both_ways(conn, full, f"incremental_result.{table}") == (0, 0)


@pytest.mark.parametrize("table", INCREMENTAL)
def test_incremental_table_equals_full_refresh(late_change, table):
    uri, _ = late_change
    with psycopg.connect(uri) as conn:
        select, _, where = INCREMENTAL[table].partition(" where ")
        full = f"(select {select} from {_schema(table)}.{table} where {where or 'true'}) as full_refresh"
        assert _except_both_ways(conn, full, f"incremental_result.{table}") == (0, 0)



def test_rerunning_an_earlier_day_keeps_later_visits(make_database, tmp_path_factory):
    """A night re-run for an earlier day (``airflow dags test`` of a past date) must not drop the
    visits after that day from the incremental table: their batches are read, and no later batch
    would bring them back. The consumers cut at their run date instead."""
    uri = make_database("cwrerun")
    load_small_raw(uri)
    with psycopg.connect(uri) as conn:
        # a call after the earlier day on Utro café's contact, whose customer nothing else that night
        # touches: only its row leaving the episodes names it (ops.customers_left)
        conn.execute("create temp table call_44 as select * from raw_bitrix24.activities where id = 41")
        conn.execute("""update call_44 set id = 44, record = record || '{"ID": "44", "OWNER_TYPE_ID": "3",
            "OWNER_ID": "21", "SUBJECT": "хотим кофемашину в зал", "START_TIME": "2026-10-01T10:00:00+03:00"}'""")
        conn.execute("insert into raw_bitrix24.activities select * from call_44")
        _age_raw(conn)
    dsn, artifacts = dsn_from_uri(uri), tmp_path_factory.mktemp("dbt")
    build_all(dsn, RUN_DATE, artifacts_dir=artifacts)
    with psycopg.connect(uri) as conn:
        episodes = conn.execute("select count(*) from int.int_customer_interactions_resolved").fetchone()[0]
        orders = conn.execute("select count(*) from int.int_orders_unified").fetchone()[0]
        conn.execute("insert into raw_meta.load_batches (batch_id, source, entity, mode, status, started_at, "
                     f"finished_at) values ('{LATE_BATCH}', 'metrica', 'visits', 'incremental', 'loaded', now(), now())")
        conn.execute("insert into raw_metrica.visits (counter_id, visit_date, counter_timezone, visit_id, client_id, "
                     "date_time, is_new_user, start_url, page_views, visit_duration, bounce, "
                     f"lastsign_traffic_source, _batch_id) values (555, '2026-09-10', 'Europe/Moscow', '9005', "
                     f"'CID1', '2026-09-10 09:00:00', '0', 'https://zernoipar.ru/hobby', '2', '60', '0', 'direct', "
                     f"'{LATE_BATCH}')")
    build_all(dsn, dt.date(2026, 9, 1), artifacts_dir=artifacts)  # the earlier day, re-run
    with psycopg.connect(uri) as conn:
        kept = conn.execute("select visit_id from int.int_web_visits_filtered order by 1").fetchall()
        assert [r[0] for r in kept] == ["9001", "9002", "9003", "9005"]
        # the resolved episodes, by contrast, end at the run date: the later ones left
        count, in_time = conn.execute("select count(*), max(occurred_date) <= '2026-09-01' "
                                      "from int.int_customer_interactions_resolved").fetchone()
        assert in_time and 0 < count < episodes
        count, in_time = conn.execute("select count(*), max(order_date) <= '2026-09-01' "
                                      "from int.int_orders_unified").fetchone()
        assert in_time and 0 < count < orders
        # and so does the history mart built on them (their removal was logged for it)
        count, in_time = conn.execute("select count(*), max(occurred_date) <= '2026-09-01' "
                                      "from marts_build.interaction_history").fetchone()
        assert in_time and 0 < count < episodes
        # the customer-level models recomputed the customers whose later rows left (ops.customers_left)
        utro = conn.execute("select customer_id from int.int_customer_nodes_resolved "
                            f"where node_key = 'bitrix24_contact:{PORTAL}:21'").fetchone()[0]
        assert conn.execute("select array_agg(reason) from int.int_customers_changed where run_date = '2026-09-01' "
                            "and customer_id = %s", (utro,)).fetchone()[0] == ["left"]
        for table in CUSTOMER_LEVEL:
            conn.execute(f"create table earlier_{table} as select * from int.{table}")
    build_all(dsn, dt.date(2026, 9, 1), full_refresh=True, artifacts_dir=artifacts)
    with psycopg.connect(uri) as conn:
        for table in CUSTOMER_LEVEL:
            assert _except_both_ways(conn, f"int.{table}", f"earlier_{table}") == (0, 0), table
    build_all(dsn, RUN_DATE, artifacts_dir=artifacts)  # and they come back
    resolved = INCREMENTAL["int_customer_interactions_resolved"]
    with psycopg.connect(uri) as conn:
        conn.execute("create table incremental_visits as select * from int.int_web_visits_filtered")
        conn.execute(f"create table incremental_episodes as select {resolved} from int.int_customer_interactions_resolved")
        conn.execute(f"create table incremental_orders as select {ORDER_COLUMNS} from int.int_orders_unified")
        history = MART_COLUMNS["interaction_history"]
        conn.execute(f"create table incremental_history as select {history} from marts_build.interaction_history")
    build_all(dsn, RUN_DATE, full_refresh=True, artifacts_dir=artifacts)
    with psycopg.connect(uri) as conn:
        assert _except_both_ways(conn, "int.int_web_visits_filtered", "incremental_visits") == (0, 0)
        full = f"(select {resolved} from int.int_customer_interactions_resolved) as full_refresh"
        assert _except_both_ways(conn, full, "incremental_episodes") == (0, 0)
        full = f"(select {ORDER_COLUMNS} from int.int_orders_unified) as full_refresh"
        assert _except_both_ways(conn, full, "incremental_orders") == (0, 0)
        full = f"(select {history} from marts_build.interaction_history) as full_refresh"
        assert _except_both_ways(conn, full, "incremental_history") == (0, 0)


def test_history_mart_follows_a_full_refresh_of_the_episodes(make_database, tmp_path_factory):
    """A full refresh of the resolved episodes alone logs no removals: interaction_history, built on
    its earlier copy, must notice and rebuild, or an episode gone meanwhile would stay in it."""
    uri, dsn, artifacts = _built_once(make_database("cwhist"), tmp_path_factory)
    with psycopg.connect(uri) as conn:
        conn.execute("delete from raw_crm_files.interactions where interaction_id = 'I1'")
        conn.execute("update raw_crm_files.interactions set _loaded_at = now()")
    episodes = "stg_crm_files__interactions int_interactions_unified int_customer_interactions_resolved"
    run_build(dsn, RUN_DATE, select=episodes, full_refresh=True, artifacts_dir=artifacts)
    build_all(dsn, RUN_DATE, artifacts_dir=artifacts)
    history = MART_COLUMNS["interaction_history"]
    with psycopg.connect(uri) as conn:
        assert conn.execute("select count(*) from marts_build.interaction_history "
                            "where interaction_id = 'crm_file_interaction:I1'").fetchone() == (0,)
        conn.execute(f"create table incremental_history as select {history} from marts_build.interaction_history")
    build_all(dsn, RUN_DATE, full_refresh=True, artifacts_dir=artifacts)
    with psycopg.connect(uri) as conn:
        full = f"(select {history} from marts_build.interaction_history) as full_refresh"
        assert _except_both_ways(conn, full, "incremental_history") == (0, 0)
