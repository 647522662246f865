"""Roles and grants: who may write raw, who builds, and what BI may read.

* ``loader`` writes the raw schemas (``raw_*``) and the ledger (``raw_meta``);
* ``transformer`` reads raw and builds ``stg``, ``int``, ``snapshots`` and ``marts_build``;
* ``bi_reader`` has USAGE on the published ``marts`` and SELECT there only — and on tables with
  personal data only the non-personal columns plus the de-identified view (see :mod:`.pii`).

Roles are cluster-wide while the grants are per database, and the test server is shared, so role
names carry a prefix (``CW_ROLE_PREFIX``) that tests set to something unique and drop afterwards.
Roles are created NOLOGIN; ``CW_<ROLE>_PASSWORD`` (e.g. ``CW_BI_READER_PASSWORD``) turns one into a
login role with that password. Everything here is idempotent and re-applied on every publish.
"""

from __future__ import annotations

import logging
import os

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

ROLES = ("loader", "transformer", "bi_reader")
BUILD_SCHEMAS = ("stg", "int", "snapshots", "marts_build")


def role_names(prefix: str | None = None) -> dict[str, str]:
    prefix = os.environ.get("CW_ROLE_PREFIX", "") if prefix is None else prefix
    return {r: f"{prefix}{r}" for r in ROLES}


def ensure_roles(conn, prefix: str | None = None) -> dict[str, str]:
    """Create the roles if missing (NOLOGIN unless a password is configured)."""
    names = role_names(prefix)
    for role, name in names.items():
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone()
        if not exists:
            try:
                with conn.transaction():  # a concurrent publish may create it first
                    conn.execute(sql.SQL("create role {} nologin").format(sql.Identifier(name)))
            except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                # roles are cluster-wide: a publish into another database of the same cluster may
                # create it between the check and the insert, and then the loser's CREATE ROLE fails
                # on pg_authid's unique index rather than with duplicate_object
                pass
        password = os.environ.get(f"CW_{role.upper()}_PASSWORD")
        if password:
            conn.execute(sql.SQL("alter role {} login password {}").format(sql.Identifier(name),
                                                                          sql.Literal(password)))
    return names


def apply_grants(conn, prefix: str | None = None, *, published: str = "marts",
                 pii: dict[str, list[str]] | None = None) -> None:
    """(Re-)grant everything on what exists now. ``pii`` maps table → its clear personal columns."""
    names = role_names(prefix)
    loader, transformer, bi = (sql.Identifier(names[r]) for r in ROLES)
    db = sql.Identifier(conn.execute("select current_database()").fetchone()[0])
    for role in (loader, transformer, bi):
        conn.execute(sql.SQL("grant connect on database {} to {}").format(db, role))
    conn.execute(sql.SQL("grant create on database {} to {}, {}").format(db, loader, transformer))
    schemas = _schemas(conn)
    for schema in [s for s in schemas if s.startswith("raw_")]:
        _grant_raw(conn, sql.Identifier(schema), loader, transformer)
    for schema in [s for s in schemas if s in BUILD_SCHEMAS]:
        s = sql.Identifier(schema)
        conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(s, transformer))
        conn.execute(sql.SQL("grant all on all tables in schema {} to {}").format(s, transformer))
    if published in schemas:
        _grant_published(conn, published, transformer, bi, pii or {})


def drop_roles(conn, prefix: str | None = None) -> None:
    """Drop the roles of ``prefix`` and what they own or were granted in this database (tests and
    throwaway warehouses; roles are cluster-wide). ``conn`` in autocommit."""
    for name in role_names(prefix).values():
        if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("drop owned by {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(name)))


def withdraw_bi(conn, schema: str, prefix: str | None = None) -> None:
    """BI stops reading a schema that is no longer the published one (the spare copy of the
    previous marts, kept for the next build): its grants followed it through the rename."""
    bi = sql.Identifier(role_names(prefix)["bi_reader"])
    conn.execute(sql.SQL("revoke usage on schema {} from {}").format(sql.Identifier(schema), bi))


def _schemas(conn) -> list[str]:
    return [r[0] for r in conn.execute("select nspname from pg_namespace").fetchall()]


def _grant_raw(conn, s: sql.Identifier, loader: sql.Identifier, transformer: sql.Identifier) -> None:
    conn.execute(sql.SQL("grant usage, create on schema {} to {}").format(s, loader))
    conn.execute(sql.SQL("grant select, insert, update, delete, truncate on all tables in schema {} to {}")
                 .format(s, loader))
    conn.execute(sql.SQL("grant usage on schema {} to {}").format(s, transformer))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, transformer))
    # tables the loader creates later are readable by dbt without waiting for the next publish
    try:
        with conn.transaction():
            conn.execute(sql.SQL("alter default privileges for role {} in schema {} grant select on tables to {}")
                         .format(loader, s, transformer))
    except psycopg.errors.InsufficientPrivilege:
        log.info("default privileges of %s not set: the publisher is not a member of it", loader.as_string(conn))


def _grant_published(conn, schema: str, transformer: sql.Identifier, bi: sql.Identifier,
                     pii: dict[str, list[str]]) -> None:
    s = sql.Identifier(schema)
    conn.execute(sql.SQL("grant usage on schema {} to {}, {}").format(s, transformer, bi))
    conn.execute(sql.SQL("grant select on all tables in schema {} to {}").format(s, transformer))
    relations = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'p')", (schema,)).fetchall()
    for (name,) in relations:
        t = sql.Identifier(schema, name)
        if name not in pii:
            conn.execute(sql.SQL("grant select on {} to {}").format(t, bi))
            continue
        # personal columns stay unreadable: grant every other column one by one
        conn.execute(sql.SQL("revoke select on {} from {}").format(t, bi))
        cols = [r[0] for r in conn.execute(
            "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and not attisdropped",
            (f"{sql.Identifier(schema, name).as_string(conn)}",)).fetchall() if r[0] not in pii[name]]
        if cols:
            conn.execute(sql.SQL("grant select ({}) on {} to {}").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)), t, bi))
