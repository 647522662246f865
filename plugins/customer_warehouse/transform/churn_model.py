"""Fit the BG/NBD churn model between the two dbt phases and store its parameters.

dbt first builds ``int.int_customer_purchase_summary`` (x, t_x, T per customer, in the project's
time unit); this module fits r, α, a, b on it and writes one row per (fitted_at, time_unit) to
``marts_build.churn_model``, which dbt then reads (source ``churn.churn_model``) to score every
customer in SQL. ``fitted_at`` is the run date, so re-running a day replaces that day's fit.
"""

from __future__ import annotations

import datetime as dt
import logging

from . import bgnbd

log = logging.getLogger(__name__)

SUMMARY_RELATION = "int.int_customer_purchase_summary"
MODEL_SCHEMA = "marts_build"
MODEL_TABLE = "churn_model"

DDL = f"""
create schema if not exists {MODEL_SCHEMA};
create table if not exists {MODEL_SCHEMA}.{MODEL_TABLE} (
    r double precision not null,
    alpha double precision not null,
    a double precision not null,
    b double precision not null,
    time_unit text not null,
    log_likelihood double precision not null,
    customers bigint not null,
    converged boolean not null,
    variant text not null default 'bgnbd',
    fitted_at date not null,
    primary key (fitted_at, time_unit, variant)
);
-- tables created before the variant column existed: add it and widen the key (tiny table)
alter table {MODEL_SCHEMA}.{MODEL_TABLE} add column if not exists variant text not null default 'bgnbd';
alter table {MODEL_SCHEMA}.{MODEL_TABLE} drop constraint if exists {MODEL_TABLE}_pkey;
alter table {MODEL_SCHEMA}.{MODEL_TABLE} add primary key (fitted_at, time_unit, variant);
"""


def read_summary(conn) -> tuple[list[float], list[float], list[float]]:
    """(x, t_x, T) of every customer who bought, from the dbt model."""
    rows = conn.execute(f"select x, t_x, t_cal from {SUMMARY_RELATION} order by customer_id").fetchall()
    return [float(r[0]) for r in rows], [float(r[1]) for r in rows], [float(r[2]) for r in rows]


def fit_and_store(conn, run_date: dt.date, time_unit: str = "week",
                  variant: str = "bgnbd") -> bgnbd.BgNbdParams | None:
    """Fit on the current summary and upsert the parameters; None when nobody has bought yet."""
    x, t_x, t_cal = read_summary(conn)
    if not x:
        log.warning("no purchases up to %s: churn model not fitted", run_date)
        return None
    params = bgnbd.fit(x, t_x, t_cal, variant=variant)
    log.info("%s on %d customers (%s): r=%.4f alpha=%.4f a=%.4f b=%.4f LL=%.2f", variant, params.customers,
             time_unit, params.r, params.alpha, params.a, params.b, params.log_likelihood)
    with conn.transaction():
        conn.execute(DDL)
        conn.execute(
            f"delete from {MODEL_SCHEMA}.{MODEL_TABLE} where fitted_at = %s and time_unit = %s and variant = %s",
            (run_date, time_unit, variant),
        )
        conn.execute(
            f"insert into {MODEL_SCHEMA}.{MODEL_TABLE} "
            "(r, alpha, a, b, time_unit, log_likelihood, customers, converged, variant, fitted_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (params.r, params.alpha, params.a, params.b, time_unit, params.log_likelihood, params.customers,
             params.converged, variant, run_date),
        )
    return params
