"""A small published ``marts`` schema for the dashboard tests, with the dbt marts' column names.

Eight customers, three jobs plus unassigned, two managers. Derived columns (ranks, cumulative
shares, ABC, whale curve, segments) are computed here in SQL the way the dbt models do, so the
marts agree with each other. The bookkeeping (``ops``, ``raw_meta``) gets one publish, one gate
run with a failed warning and two sources, and ``marts.data_status`` is created over it; roles
and grants are applied exactly as the publisher does.
"""

from __future__ import annotations

import datetime as dt
import uuid

from customer_warehouse.loading.tables import META_DDL
from customer_warehouse.publish import pii, roles
from customer_warehouse.publish.publisher import PUBLISH_LOG_DDL
from customer_warehouse.quality.results import OPS_DDL
from customer_warehouse.serving.status import create_status_view

RUN_DATE = dt.date(2026, 11, 20)
PII = {"customer_360": ["name", "email", "phone", "birthday"]}

# customer_id, job_id, revenue, won_orders, cost_of_goods, cost_to_serve, campaign, acquisition_cost
CUSTOMERS = [
    ("c1", "horeca_restock", 900000.00, 30, 540000.00, 40000.00, "horeca_wholesale", 5000.00),
    ("c2", "horeca_restock", 450000.00, 14, 270000.00, 30000.00, "horeca_wholesale", 5000.00),
    ("c3", "home_espresso", 60000.00, 8, 30000.00, 6000.00, "espresso_home", 1500.00),
    ("c4", "home_espresso", 25000.00, 3, 12500.00, 4000.00, "espresso_home", 1500.00),
    ("c5", "gift", 9000.00, 1, 5400.00, 2500.00, "coffee_gift", 2000.00),
    ("c6", "gift", 4000.00, 1, 2400.00, 7000.00, None, 0.00),
    ("c7", "unassigned", 12000.00, 2, 7200.00, 15000.00, None, 0.00),
    ("c8", "home_espresso", 3000.00, 1, 1500.00, 9000.00, "espresso_home", 1500.00),
]
# customer_id, p_alive, is_churned, reason, loyalty, retention_budget, expected_90d, last_purchase
CHURN = [
    ("c1", 0.93, False, None, "behavioural", 0.00, 6.2, "2026-11-10"),
    ("c2", 0.31, True, "competitor_price", "behavioural", 12500.00, 1.1, "2026-05-02"),
    ("c3", 0.45, True, "dissatisfied", "emotional", 2400.00, 0.8, "2026-06-15"),
    ("c4", 0.77, False, None, "none", 0.00, 0.9, "2026-10-01"),
    ("c5", 0.12, True, "need_disappeared", "none", 0.00, 0.1, "2025-12-24"),
    ("c6", 0.05, True, "unknown", "none", 150.00, 0.05, "2025-03-08"),
    ("c7", 0.58, False, None, "personal", 0.00, 0.6, "2026-09-09"),
]
# customer_id, purchases_6m, purchases_12m, complaints_12m, manager, card_completeness
EPISODES = [
    ("c1", 9, 18, 1, "m1", 1.0),
    ("c2", 1, 6, 2, "m1", 0.8571),
    ("c3", 0, 3, 1, "m2", 0.7143),
    ("c4", 2, 2, 0, "m2", 1.0),
    ("c5", 0, 1, 0, "m2", 0.4286),
    ("c6", 0, 0, 0, None, 0.2857),
    ("c7", 1, 2, 0, "m1", 0.5714),
    ("c8", 0, 1, 0, "m2", 0.5714),
]
MANAGERS = {"m1": "Ольга Ким", "m2": "Пётр Орлов"}
# (channel, is_complaint, occurred_date, customer_id)
INTERACTIONS = [
    ("call", False, "2026-10-01", "c1"), ("meeting", False, "2026-09-12", "c1"), ("complaint", True, "2026-08-03", "c1"),
    ("email", False, "2026-07-15", "c2"), ("complaint", True, "2026-04-20", "c2"), ("complaint", True, "2026-04-28", "c2"),
    ("chat", False, "2026-06-01", "c3"), ("complaint", True, "2026-06-02", "c3"), ("call", False, "2026-10-11", "c4"),
    ("stage_change", False, "2026-10-11", "c4"), ("note", False, "2026-02-02", "c7"), ("call", False, "2025-06-01", "c6"),
]
JOB_NAMES = {"home_espresso": "Café-quality espresso at home", "horeca_restock": "Café bar restock",
             "gift": "Memorable coffee present", "office_supply": "Office coffee without effort",
             "unassigned": "Unassigned"}
SOURCES = [  # source, entity, finished hours ago, interval_end days ago, rows_loaded, quarantined, status
    ("amocrm", "leads", 5, 1, 120, 2, "loaded"),
    ("metrica", "visits", 30, 2, 5400, 0, "loaded"),
    ("metrica", "visits", 2, 1, 0, 0, "failed"),
]


def build(conn, prefix: str) -> None:
    """Create and fill ``marts``, the bookkeeping and the status view; grant as the publisher."""
    conn.execute("create schema marts")
    _profitability(conn)
    _jobs(conn)
    _churn(conn)
    _episodes(conn)
    _kpis(conn)
    _customer_360(conn)
    _segments(conn)
    _bookkeeping(conn)
    create_status_view(conn, "marts")
    roles.ensure_roles(conn, prefix)
    personal = pii.deidentify(conn, "marts", "dashboard-test-key")
    assert personal == PII, personal
    roles.apply_grants(conn, prefix, published="marts", pii=personal)
    conn.commit()


def _profitability(conn) -> None:
    conn.execute("""
        create table marts._base (customer_id text, revenue numeric(18,2), won_orders int, cost_of_goods numeric(18,2),
            cost_to_serve numeric(18,2), acquisition_campaign text, acquisition_cost numeric(18,2))""")
    with conn.cursor() as cur:
        cur.executemany("insert into marts._base values (%s, %s, %s, %s, %s, %s, %s)",
                        [(c, r, n, g, s, camp, a) for c, _, r, n, g, s, camp, a in CUSTOMERS])
    conn.execute("""
        create table marts.customer_profitability as
        with computed as (
            select *, revenue - cost_of_goods as gross_profit,
                   revenue - cost_of_goods - cost_to_serve - acquisition_cost as profit
            from marts._base
        ),
        ranked as (
            select computed.*,
                   row_number() over (order by profit desc, customer_id) as profit_rank,
                   count(*) over () as customer_count,
                   sum(profit) over () as total_profit,
                   sum(greatest(profit, 0)) over () as total_positive_profit,
                   sum(profit) over (order by profit desc, customer_id rows unbounded preceding) as cumulative_profit
            from computed
        )
        select customer_id, revenue, won_orders, cost_of_goods, gross_profit, cost_to_serve, acquisition_campaign,
               acquisition_cost, profit,
               case when revenue <> 0 then round(profit / revenue, 4) end as margin,
               profit_rank, cumulative_profit,
               round(cumulative_profit / total_profit, 6) as cumulative_profit_share,
               round(cast(profit_rank as numeric) / customer_count, 6) as customer_share,
               case when profit <= 0 then 'D'
                    when (cumulative_profit - profit) / total_positive_profit < 0.80 then 'A'
                    when (cumulative_profit - profit) / total_positive_profit < 0.95 then 'B'
                    else 'C' end as abc_class
        from ranked""")
    conn.execute("drop table marts._base")
    conn.execute("""
        create table marts.whale_curve as
        with steps as (select generate_series(0, 10) as point),
        totals as (select count(*) as n, sum(profit) as total from marts.customer_profitability),
        points as (select point, cast(ceil(point * n / 10.0) as integer) as included, total from steps, totals)
        select points.point, round(points.point / 10.0, 6) as customer_share, points.included as customers_included,
               coalesce(p.cumulative_profit, 0) as cumulative_profit,
               round(coalesce(p.cumulative_profit, 0) / points.total, 6) as cumulative_profit_share
        from points left join marts.customer_profitability p on p.profit_rank = points.included""")


def _jobs(conn) -> None:
    conn.execute("""create table marts.customer_jobs (customer_id text, job_id text, job_name text,
        confidence numeric, job_score numeric, evidence_sources text)""")
    with conn.cursor() as cur:
        cur.executemany("insert into marts.customer_jobs values (%s, %s, %s, %s, %s, %s)",
                        [(c, j, JOB_NAMES[j], 0 if j == "unassigned" else 0.8, 0 if j == "unassigned" else 3,
                          "" if j == "unassigned" else "crm") for c, j, *_ in CUSTOMERS])


def _churn(conn) -> None:
    conn.execute("""create table marts.customer_churn (customer_id text, first_purchase_date date,
        last_purchase_date date, x integer, t_x numeric, t numeric, time_unit text, days_since_last_purchase integer,
        rfm_segment text, p_alive double precision, expected_purchases_90d double precision,
        typical_interpurchase_days numeric, silence_threshold_days numeric, is_churned boolean,
        churn_reason_class text, churn_reason_source text, loyalty_type text, retention_budget numeric)""")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.customer_churn values (%s, date '2024-01-10', %s, 3, 40, 97, 'week', "
            "%s - %s::date, '333', %s, %s, 30, 90, %s, %s, %s, %s, %s)",
            [(c, last, RUN_DATE, last, p, e, churned, reason, "exit_survey" if reason else None, loyalty, budget)
             for c, p, churned, reason, loyalty, budget, e, last in CHURN])


def _episodes(conn) -> None:
    conn.execute("""create table marts.customer_episodes (customer_id text, purchases_6m bigint, purchases_12m bigint,
        last_purchase_date date, contacts_6m bigint, contacts_12m bigint, last_contact_at timestamptz,
        last_contact_channel text, open_deals bigint, open_deal_amount numeric, complaints bigint, complaints_12m bigint,
        stated_preferences text, stated_interests text, manager_key text, manager_name text,
        card_completeness numeric, card_missing_fields text)""")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.customer_episodes values (%s, %s, %s, null, 1, 2, null, 'call', 0, 0, %s, %s, "
            "null, null, %s, %s, %s, null)",
            [(c, p6, p12, comp, comp, f"crm_file:{m}" if m else None, MANAGERS.get(m), card)
             for c, p6, p12, comp, m, card in EPISODES])
    conn.execute("""create table marts.interaction_history (interaction_id text, customer_id text, deal_id text,
        source text, occurred_at timestamptz, occurred_date date, channel text, activity text, direction text,
        is_complaint boolean, manager_key text, manager_name text, outcome text)""")
    with conn.cursor() as cur:
        cur.executemany(
            "insert into marts.interaction_history values (%s, %s, null, 'crm_file', %s::date + time '12:00', %s, %s, "
            "%s, null, %s, null, null, null)",
            [(f"crm_file:i{n}", c, d, d, ch, ch, comp) for n, (ch, comp, d, c) in enumerate(INTERACTIONS)])
    conn.execute("""
        create table marts.manager_card_completeness as
        select manager_key, max(manager_name) as manager_name, count(*) as customers,
               round(avg(card_completeness), 4) as avg_card_completeness,
               count(*) filter (where card_completeness = 1) as complete_cards,
               round(count(*) filter (where card_completeness = 1)::numeric / count(*), 4) as share_complete_cards,
               count(*) * 2 as won_deals,
               count(*) filter (where card_completeness < 1) as won_deals_incomplete_card
        from marts.customer_episodes where manager_key is not null group by manager_key""")


def _kpis(conn) -> None:
    conn.execute("""create table marts.customer_kpis as
        select month_start::date as month_start, 5 as active_customers, 50000.00 as revenue, 6 as transactions,
               10000.00 as revenue_per_user, 1.2 as transactions_per_user,
               (extract(month from month_start)::int % 3) as new_customers,
               5 - (extract(month from month_start)::int % 3) as returning_customers,
               0.2 as share_new, 0.8 as share_returning, 1 as frequent_customers
        from generate_series(date '2026-01-01', date '2026-11-01', interval '1 month') as month_start""")


def _customer_360(conn) -> None:
    conn.execute("""create table marts.customer_360 as
        select customer_id, 'Клиент ' || customer_id as name, customer_id || '@example.ru' as email,
               '7916000000' || right(customer_id, 1) as phone, date '1990-01-01' as birthday, job_id
        from marts.customer_jobs""")


def _segments(conn) -> None:
    conn.execute("""create table marts.jtbd_segments as
        with all_jobs as (
            select job_id, job_name from (values ('home_espresso', 'Café-quality espresso at home'),
                ('horeca_restock', 'Café bar restock'), ('gift', 'Memorable coffee present'),
                ('office_supply', 'Office coffee without effort'), ('unassigned', 'Unassigned')) as j (job_id, job_name)
        ),
        value as (
            select jobs.job_id, count(*) as customers, sum(p.revenue) as revenue, sum(p.profit) as profit,
                   count(churn.customer_id) as buyers, count(*) filter (where churn.is_churned) as churned,
                   round(avg(churn.p_alive)::numeric, 4) as avg_p_alive,
                   coalesce(sum(churn.retention_budget), 0) as retention_budget
            from marts.customer_jobs jobs
            join marts.customer_profitability p using (customer_id)
            left join marts.customer_churn churn using (customer_id)
            group by jobs.job_id
        )
        select all_jobs.job_id, all_jobs.job_name, coalesce(value.customers, 0) as customers,
               coalesce(value.revenue, 0) as revenue, coalesce(value.profit, 0) as profit,
               coalesce(value.buyers, 0) as buyers,
               round(value.churned::numeric / nullif(value.buyers, 0), 4) as churn_rate, value.avg_p_alive,
               coalesce(value.retention_budget, 0) as retention_budget,
               case all_jobs.job_id when 'home_espresso' then 'как приготовить эспрессо дома; кофемолка для дома'
                    when 'horeca_restock' then 'кофе оптом для кофейни' end as top_search_phrases,
               case all_jobs.job_id when 'home_espresso' then '/hobby' when 'horeca_restock' then '/horeca'
                    when 'gift' then '/gifts' end as top_landing_pages,
               case when value.customers > 0 then 'yandex; direct' end as top_channels,
               coalesce(value.customers, 0) as won_deals, coalesce(value.customers, 0) + 1 as closed_deals,
               round(coalesce(value.customers, 0)::numeric / (coalesce(value.customers, 0) + 1), 4)
                   as deal_conversion_rate
        from all_jobs left join value using (job_id)""")


def _bookkeeping(conn) -> None:
    conn.execute(OPS_DDL)
    conn.execute(PUBLISH_LOG_DDL)
    conn.execute(META_DDL)
    run_id = uuid.uuid4()
    conn.execute("insert into ops.publish_log (run_id, run_date, published_at, status, message) values "
                 "(%s, %s, timestamptz '2026-11-20 03:15:00+03', 'published', 'ok')", (run_id, RUN_DATE))
    checks = [("customer_profitability", "profit_not_null", "block", "passed", "0", "0"),
              ("customer_churn", "p_alive_range", "warn", "failed", "3 rows outside [0,1]", "0 rows")]
    for table, check, severity, status, observed, expected in checks:
        conn.execute(
            "insert into ops.quality_results (run_id, run_date, checked_at, check_id, schema_name, table_name, "
            "check_name, check_kind, severity, status, observed, expected) values "
            "(%s, %s, timestamptz '2026-11-20 03:10:00+03', %s, 'marts_build', %s, %s, 'sql', %s, %s, %s, %s)",
            (run_id, RUN_DATE, f"{table}.{check}", table, check, severity, status, observed, expected))
    for source, entity, hours_ago, days_ago, loaded, quarantined, status in SOURCES:
        conn.execute(
            "insert into raw_meta.load_batches (batch_id, source, entity, unit, interval_start, interval_end, mode, "
            "status, rows_read, rows_loaded, rows_quarantined, started_at, finished_at) values "
            "(%s, %s, %s, 'u', now() - make_interval(days => %s + 1), now() - make_interval(days => %s), "
            "'incremental', %s, %s, %s, %s, now() - make_interval(hours => %s), now() - make_interval(hours => %s))",
            (uuid.uuid4(), source, entity, days_ago, days_ago, status, loaded + quarantined, loaded, quarantined,
             hours_ago, hours_ago))
