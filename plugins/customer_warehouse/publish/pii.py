"""De-identification of personal data before the marts are shown to BI.

For every table of the build schema with personal columns (name, e-mail, phone, birthday…), each
such column ``c`` gets a companion ``c_hmac`` = hex HMAC-SHA256(key, c). Keyed hashing keeps joins
and distinct counts working for analysts (the same e-mail always maps to the same token) while the
value cannot be recovered or brute-forced without the key. A view ``<table>_deidentified`` shows
the table with the tokens in place of the clear values; ``bi_reader`` gets that view and the
non-personal columns of the table, never the clear columns (see :mod:`.roles`).

The key comes from ``CW_PII_HMAC_KEY`` or the Airflow connection ``pii_hmac_key`` (its password).
It is passed as a bound parameter and never stored in a view definition, so nobody can read it
back from the catalogue. pgcrypto's ``hmac()`` computes in the database; when the extension cannot
be created the tokens are computed in Python. Without a key the view shows NULL instead.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

PII_CONN_ID = "pii_hmac_key"
#: column names treated as personal data (whole name match, case-insensitive); ``source_key`` because
#: customer_source_keys holds e-mails and phone numbers as identity keys. ``CW_PII_COLUMNS`` adds more.
PII_PATTERN = re.compile(
    r"^(name|full_name|first_name|last_name|middle_name|contact_name|customer_name|email|e_mail|"
    r"respondent_email|phone|phone_number|mobile|respondent_phone|birthday|birth_date|date_of_birth|"
    r"address|passport|source_key)$",
    re.IGNORECASE,
)


def is_pii(column: str) -> bool:
    extra = {c.strip().lower() for c in os.environ.get("CW_PII_COLUMNS", "").split(",") if c.strip()}
    return bool(PII_PATTERN.match(column)) or column.lower() in extra
SUFFIX = "_hmac"
VIEW_SUFFIX = "_deidentified"


def hmac_key() -> str | None:
    if os.environ.get("CW_PII_HMAC_KEY"):
        return os.environ["CW_PII_HMAC_KEY"]
    from ..connections import get_connection

    conn = get_connection(PII_CONN_ID)
    return (conn.password or conn.extra.get("key")) if conn else None


def pii_columns(conn, schema: str) -> dict[str, list[str]]:
    """Base tables of ``schema`` → their personal columns."""
    rows = conn.execute(
        "select c.table_name, c.column_name from information_schema.columns c "
        "join information_schema.tables t using (table_schema, table_name) "
        "where c.table_schema = %s and t.table_type = 'BASE TABLE' order by c.table_name, c.ordinal_position",
        (schema,),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        if is_pii(column):
            out.setdefault(table, []).append(column)
    return out


def deidentify(conn, schema: str, key: str | None) -> dict[str, list[str]]:
    """Add the HMAC columns and the de-identified views in ``schema`` (inside the caller's
    transaction). Returns table → clear personal columns, for the grants."""
    found = pii_columns(conn, schema)
    if not found:
        return {}
    use_pgcrypto = key is not None and _pgcrypto(conn)
    if key is None:
        log.warning("no PII HMAC key (CW_PII_HMAC_KEY / connection %s): personal columns are "
                    "withheld from BI instead of tokenised", PII_CONN_ID)
    for table, columns in found.items():
        for column in columns:
            if key is not None:
                _add_hmac(conn, schema, table, column, key, use_pgcrypto)
        _view(conn, schema, table, columns, tokenised=key is not None)
    views = {f"{t}{VIEW_SUFFIX}" for t in found}
    log.info("de-identified %s (views %s)", {t: c for t, c in found.items()}, sorted(views))
    return found


def _pgcrypto(conn) -> bool:
    try:
        with conn.transaction():
            conn.execute("create extension if not exists pgcrypto")
            conn.execute("select hmac('x'::text, 'k'::text, 'sha256')")
        return True
    except psycopg.Error as err:
        log.info("pgcrypto unavailable (%s): HMAC computed in Python", str(err).strip()[:120])
        return False


def _add_hmac(conn, schema: str, table: str, column: str, key: str, in_db: bool) -> None:
    t, c, h = sql.Identifier(schema, table), sql.Identifier(column), sql.Identifier(column + SUFFIX)
    conn.execute(sql.SQL("alter table {} add column if not exists {} text").format(t, h))
    if in_db:
        conn.execute(sql.SQL("update {t} set {h} = encode(hmac({c}::text, %s::text, 'sha256'), 'hex') "
                             "where {c} is not null").format(t=t, h=h, c=c), (key,))
        return
    values = [r[0] for r in conn.execute(
        sql.SQL("select distinct {c}::text from {t} where {c} is not null").format(c=c, t=t)).fetchall()]
    conn.execute("create temp table if not exists _pii_tokens (value text primary key, token text) on commit drop")
    conn.execute("truncate _pii_tokens")
    with conn.cursor() as cur, cur.copy("copy _pii_tokens (value, token) from stdin") as cp:
        for v in values:
            cp.write_row((v, token(key, v)))
    conn.execute(sql.SQL("update {t} set {h} = p.token from _pii_tokens p where {t}.{c}::text = p.value")
                 .format(t=t, h=h, c=c))


def token(key: str, value: str) -> str:
    """The same token pgcrypto's ``encode(hmac(value, key, 'sha256'), 'hex')`` gives."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def _view(conn, schema: str, table: str, pii: list[str], *, tokenised: bool) -> None:
    cols = [r[0] for r in conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by ordinal_position", (schema, table)).fetchall()]
    select = []
    for col in cols:
        if col.endswith(SUFFIX) and col[: -len(SUFFIX)] in pii:
            continue
        if col in pii:
            value = sql.Identifier(col + SUFFIX) if tokenised else sql.SQL("null::text")
            select.append(sql.SQL("{} as {}").format(value, sql.Identifier(col)))
        else:
            select.append(sql.Identifier(col))
    conn.execute(sql.SQL("create or replace view {} as select {} from {}").format(
        sql.Identifier(schema, table + VIEW_SUFFIX), sql.SQL(", ").join(select), sql.Identifier(schema, table)))
