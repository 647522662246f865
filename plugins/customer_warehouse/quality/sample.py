"""A tiny, internally consistent warehouse: raw CRM file batches, an int model and a marts build.

Used by the gate and publish tests and by a smoke run of the gate on an empty database. The raw
rows land through the real :class:`~customer_warehouse.loading.RawBatch` (ledger included), and
the marts agree with them: Σ customer revenue = Σ won orders, the whale curve ends at 100%, job
shares sum to one. Tests then break one thing at a time.
"""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from ..loading import Column, RawBatch, RawTable

ORDERS = [  # order_id, customer_id, amount, cost
    ("o1", "c1", 1000.00, 600.00),
    ("o2", "c1", 500.00, 300.00),
    ("o3", "c2", 2000.00, 1500.00),
    ("o4", "c3", 300.00, 100.00),
]
CUSTOMERS = [  # customer_id, name, email, phone, birthday
    ("c1", "Анна Петрова", "anna@example.ru", "79161234567", dt.date(1990, 5, 17)),
    ("c2", "Кофейня «Зерно»", "bar@zerno.example", "74951112233", None),
    ("c3", "Илья Смирнов", "ilya@example.ru", "79035550011", dt.date(1985, 1, 2)),
]


def orders_table() -> RawTable:
    cols = [Column("unit", "text not null"), Column("order_id"), Column("customer_id"),
            Column("ordered_at", "timestamptz"), Column("amount", "numeric(18,2)"), Column("status"),
            Column("product"), Column("quantity", "numeric"), Column("cost", "numeric(18,2)"),
            Column("manager"), Column("record", "jsonb not null"), Column("row_number", "bigint not null")]
    return RawTable("raw_crm_files", "orders", cols)


def load_orders(conn, orders=ORDERS, *, unit: str = "default") -> str:
    """Land ``orders`` as one snapshot batch of the CRM file export; returns the batch id."""
    table = orders_table()
    table.ensure(conn)
    at = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
    with RawBatch(conn, "crm_files", "orders", unit=unit, mode="snapshot") as batch:
        batch.delete_where(table, sql.SQL("unit = %s"), (unit,))
        rows = []
        for n, (oid, cid, amount, cost) in enumerate(orders, start=1):
            batch.read()
            rows.append((unit, oid, cid, at, amount, "won", "Зерно спешелти 250 г", 1, cost, "Ольга",
                         {"order_id": oid}, n))
        batch.copy_rows(table, [c.name for c in table.columns], rows)
    conn.commit()
    return batch.batch_id


def build_marts(conn, schema: str = "marts_build", *, revenue_shift: float = 0.0) -> None:
    """Create the marts the gate audits, consistent with :data:`ORDERS` (plus ``revenue_shift``)."""
    s = sql.Identifier(schema)
    conn.execute(sql.SQL("drop schema if exists {} cascade").format(s))
    conn.execute(sql.SQL("create schema {}").format(s))
    _int_revenue(conn)
    _profitability(conn, s, revenue_shift)
    _other_marts(conn, s)
    conn.commit()


def _int_revenue(conn) -> None:
    """``int.int_orders_costed``: the won orders the reconciliation check sums."""
    conn.execute("create schema if not exists int")
    conn.execute("drop table if exists int.int_orders_costed")
    conn.execute("create table int.int_orders_costed as "
                 "select order_id as order_key, customer_id, amount as revenue, cost as cost_of_goods "
                 "from raw_crm_files.orders where status = 'won'")


def _profitability(conn, s: sql.Identifier, revenue_shift: float) -> None:
    conn.execute(sql.SQL("""
        create table {s}.customer_profitability as
        with base as (
            select customer_id, sum(revenue) + %s as revenue, count(*) as won_orders,
                   sum(cost_of_goods) as cost_of_goods,
                   50.00::numeric as cost_to_serve, 20.00::numeric as acquisition_cost
            from int.int_orders_costed group by customer_id
        ),
        profit as (
            select *, revenue - cost_of_goods - cost_to_serve - acquisition_cost as profit from base
        ),
        ranked as (
            select *, profit / nullif(revenue, 0) as margin,
                   row_number() over (order by profit desc, customer_id) as profit_rank,
                   sum(profit) over (order by profit desc, customer_id) / sum(profit) over ()
                       as cumulative_profit_share,
                   row_number() over (order by profit desc, customer_id)::numeric / count(*) over ()
                       as customer_share
            from profit
        )
        select *, case when cumulative_profit_share <= 0.8 then 'A'
                       when cumulative_profit_share <= 0.95 then 'B' else 'C' end as abc_class
        from ranked
    """).format(s=s), (revenue_shift,))
    conn.execute(sql.SQL("""
        create table {s}.whale_curve as
        select profit_rank as point, customer_share, cumulative_profit_share
        from {s}.customer_profitability
    """).format(s=s))


def _other_marts(conn, s: sql.Identifier) -> None:
    conn.execute(sql.SQL("""
        create table {s}.customer_jobs as
        select * from (values ('c1', 'home_espresso', 'Café espresso at home', 0.9, 'crm,metrica'),
                              ('c2', 'horeca_restock', 'Keep a café stocked', 0.95, 'crm'),
                              ('c3', 'unassigned', 'Unassigned', 0.0, ''))
            as v(customer_id, job_id, job_name, confidence, evidence_sources);
        create table {s}.customer_churn as
        select * from (values ('c1', 1, 30.0, 200.0, 0.85, 0.7, false, 'unknown', 'behavioural', 120.0),
                              ('c2', 0, 0.0, 150.0, 1.0, 0.4, false, 'unknown', 'none', 300.0),
                              ('c3', 0, 0.0, 400.0, 0.2, 0.05, true, 'need_disappeared', 'none', 0.0))
            as v(customer_id, x, t_x, t, p_alive, expected_purchases_90d, is_churned, churn_reason_class,
                 loyalty_type, retention_budget);
        create table {s}.jtbd_segments as
        select j.job_id, j.job_name, count(*) as customers, sum(p.revenue) as revenue, sum(p.profit) as profit,
               avg(case when c.is_churned then 1.0 else 0.0 end) as churn_rate
        from {s}.customer_jobs j
        join {s}.customer_profitability p using (customer_id)
        join {s}.customer_churn c using (customer_id)
        group by j.job_id, j.job_name;
        create table {s}.customer_360 (
            customer_id text primary key, name text, email text, phone text, birthday date,
            job_id text, revenue numeric, p_alive double precision
        );
    """).format(s=s))
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL("insert into {s}.customer_360 (customer_id, name, email, phone, birthday) "
                    "values (%s, %s, %s, %s, %s)").format(s=s), CUSTOMERS)
    conn.execute(sql.SQL("""
        update {s}.customer_360 c set job_id = j.job_id, revenue = p.revenue, p_alive = ch.p_alive
        from {s}.customer_jobs j, {s}.customer_profitability p, {s}.customer_churn ch
        where j.customer_id = c.customer_id and p.customer_id = c.customer_id and ch.customer_id = c.customer_id
    """).format(s=s))
