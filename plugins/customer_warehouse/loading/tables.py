"""Raw table definitions and the ``raw_meta`` bookkeeping schema.

A raw table keeps the whole original record: ``record jsonb`` for API JSON, one text column per
field for TSV exports. Every raw table also carries the load metadata columns below, so any row
can be traced to the batch, interval and file or page it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from psycopg import sql

META_COLUMNS: tuple[tuple[str, str], ...] = (
    ("_batch_id", "uuid not null"),
    ("_interval_start", "timestamptz"),
    ("_interval_end", "timestamptz"),
    ("_loaded_at", "timestamptz not null default now()"),
    ("_source_part", "text"),
)

META_DDL = """
create schema if not exists raw_meta;

create table if not exists raw_meta.load_batches (
    batch_id uuid primary key,
    source text not null,
    entity text not null,
    unit text not null default '',
    interval_start timestamptz,
    interval_end timestamptz,
    mode text not null,
    status text not null,
    rows_read bigint not null default 0,
    rows_loaded bigint not null default 0,
    rows_quarantined bigint not null default 0,
    started_at timestamptz not null,
    finished_at timestamptz,
    duration_seconds numeric(12, 3),
    detail jsonb not null default '{}'::jsonb,
    constraint rows_balance check (status <> 'loaded' or rows_read = rows_loaded + rows_quarantined)
);
create index if not exists load_batches_source_idx on raw_meta.load_batches (source, entity, finished_at);

create table if not exists raw_meta.quarantine (
    batch_id uuid not null,
    source text not null,
    entity text not null,
    source_part text,
    row_number bigint,
    reason text not null,
    raw_text text,
    quarantined_at timestamptz not null default now()
);
create index if not exists quarantine_batch_idx on raw_meta.quarantine (batch_id);

create table if not exists raw_meta.extract_state (
    source text not null,
    unit text not null,
    key text not null,
    value jsonb,
    updated_at timestamptz not null default now(),
    primary key (source, unit, key)
);

create table if not exists raw_meta.schema_drift (
    source text not null,
    entity text not null,
    column_name text not null,
    first_batch_id uuid,
    first_seen_at timestamptz not null default now(),
    primary key (source, entity, column_name)
);
"""


# The value of a batch setting (``set_config('cw.<column>', …, true)``), typed like ``sample``.
# Declared IMMUTABLE on purpose: PostgreSQL plans a COPY's column defaults once per statement
# (``expression_planner`` folds immutable calls with constant arguments), so a default that calls
# it costs nothing per row: it is one constant for the whole COPY, which is what a batch's
# metadata is. It is only used in the column defaults RawBatch.copy_chunks sets; writers that omit
# those columns outside such a COPY get NULL (and the NOT NULL columns refuse the row).
BATCH_SETTING_DDL = """
create or replace function raw_meta.batch_setting(name text, sample anyelement) returns anyelement
language plpgsql immutable parallel safe as $fn$
begin
    return nullif(current_setting(name, true), '');
end
$fn$;
"""


def ensure_meta_schema(conn) -> None:
    """Create ``raw_meta`` if missing. Idempotent; safe inside a transaction."""
    # serialise concurrent first runs (parallel mapped tasks) on one advisory lock
    present = conn.execute(_META_PRESENT).fetchone()[1]
    if present:  # the usual case: skip the DDL (its IF NOT EXISTS checks cost milliseconds a batch)
        return
    conn.execute(META_DDL)
    if conn.execute("select to_regprocedure('raw_meta.batch_setting(text, anyelement)')").fetchone()[0] is None:
        conn.execute(BATCH_SETTING_DDL)


# everything META_DDL and BATCH_SETTING_DDL create (an index dropped by hand counts too)
_META_PRESENT = """
select pg_advisory_xact_lock(hashtext('customer_warehouse.raw_meta')),
       to_regclass('raw_meta.load_batches') is not null and to_regclass('raw_meta.load_batches_source_idx') is not null
   and to_regclass('raw_meta.quarantine') is not null and to_regclass('raw_meta.quarantine_batch_idx') is not null
   and to_regclass('raw_meta.extract_state') is not null and to_regclass('raw_meta.schema_drift') is not null
   and to_regprocedure('raw_meta.batch_setting(text, anyelement)') is not null
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str = "text"


@dataclass
class RawTable:
    """A raw table: ``schema.name`` with its data columns, key and the metadata columns.

    ``key`` names the columns that identify a record (for upserts); ``version_column`` names the
    column whose newest value wins (``updated_at`` for CRM entities).
    """

    schema: str
    name: str
    columns: list[Column]
    key: tuple[str, ...] = ()
    version_column: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    extra_columns_allowed: bool = True
    _known: set[str] = field(default_factory=set, repr=False)

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def ensure(self, conn) -> None:
        """Create the schema and table if missing (idempotent)."""
        names = [self.name, self._loaded_at_index, *(self._index_name(idx) for idx in self.indexes)]
        present = conn.execute(  # the lock and the usual answer (all there) in one round trip
            "select pg_advisory_xact_lock(hashtext(%s)), (select count(*) from pg_class c join pg_namespace n "
            "on n.oid = c.relnamespace where n.nspname = %s and c.relname = any(%s))",
            (f"{self.schema}.{self.name}", self.schema, names),
        ).fetchone()[1]
        if present == len(names):
            self._known = set(existing_columns(conn, self.schema, self.name))
            return
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(self.schema)))
        defs = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in self.columns]
        defs += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in META_COLUMNS]
        if self.key:
            defs.append(sql.SQL("primary key ({})").format(sql.SQL(", ").join(map(sql.Identifier, self.key))))
        conn.execute(sql.SQL("create table if not exists {} ({})").format(self.ident, sql.SQL(", ").join(defs)))
        # Batches append in load order, so a BRIN on the load time finds "rows loaded since X" (the
        # incremental dbt models, the gate's nightly scope) in the newest block ranges without a
        # scan of the history, and costs next to nothing on COPY (a btree would not).
        conn.execute(sql.SQL("create index if not exists {} on {} using brin (_loaded_at)").format(
            sql.Identifier(self._loaded_at_index), self.ident))
        for idx in self.indexes:
            name = self._index_name(idx)
            conn.execute(
                sql.SQL("create index if not exists {} on {} ({})").format(
                    sql.Identifier(name), self.ident, sql.SQL(", ").join(map(sql.Identifier, idx))
                )
            )
        self._known = set(existing_columns(conn, self.schema, self.name))

    @property
    def _loaded_at_index(self) -> str:
        return f"{self.name}__loaded_at_brin"[-63:]

    def _index_name(self, idx: tuple[str, ...]) -> str:
        return f"{self.name}_{'_'.join(idx)}_idx"[:63]

    def add_columns(self, conn, names: list[str]) -> list[str]:
        """Add text columns that a newer export carries (schema drift). Returns those added."""
        if not self._known:
            self._known = set(existing_columns(conn, self.schema, self.name))
        added = []
        for name in names:
            if name not in self._known:
                conn.execute(
                    sql.SQL("alter table {} add column if not exists {} text").format(self.ident, sql.Identifier(name))
                )
                self._known.add(name)
                self.columns.append(Column(name))
                added.append(name)
        return added


    def ensure_setting_defaults(self, conn, columns: list[str]) -> None:
        """Make ``columns`` default to their batch setting ``cw.<column>`` (see ``batch_setting``),
        keeping a non-null default the column had (``_loaded_at``: ``now()``) as the fallback.

        Done once per table (the catalog is checked each batch: a dropped ``raw_meta`` takes the
        defaults with it). ALTER ... SET DEFAULT only touches the catalog, never the rows.
        """
        rows = conn.execute(
            "select a.attname, format_type(a.atttypid, a.atttypmod), pg_get_expr(d.adbin, d.adrelid) "
            "from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum "
            "where a.attrelid = %s::regclass and a.attname = any(%s) and not a.attisdropped",
            (f'"{self.schema}"."{self.name}"', columns),
        ).fetchall()
        found = {name: (typ, default) for name, typ, default in rows}
        missing = set(columns) - set(found)
        if missing:
            raise ValueError(f"{self.schema}.{self.name} has no column(s) {sorted(missing)}")
        for name in columns:
            typ, default = found[name]
            if default and "batch_setting(" in default:
                continue
            setting = sql.SQL("raw_meta.batch_setting({}, null::{})").format(
                sql.Literal(setting_name(name)), sql.SQL(typ))
            if default:
                setting = sql.SQL("coalesce({}, {})").format(setting, sql.SQL(default))
            conn.execute(sql.SQL("alter table {} alter column {} set default {}").format(
                self.ident, sql.Identifier(name), setting))


def setting_name(column: str) -> str:
    """``cw.<column>``: the batch setting a column's default reads."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", column):
        raise ValueError(f"no batch setting for column {column!r}")
    return f"cw.{column}"


def existing_columns(conn, schema: str, table: str) -> list[str]:
    # pg_attribute rather than information_schema.columns: the same answer without the view's
    # privilege joins, which cost several milliseconds on every batch
    rows = conn.execute(
        "select a.attname from pg_attribute a join pg_class c on c.oid = a.attrelid "
        "join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relname = %s and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def json_table(schema: str, name: str, key: tuple[str, ...] = ("id",), key_type: str = "bigint",
               version_column: str | None = "updated_at", extra: list[Column] | None = None) -> RawTable:
    """The usual shape of an API entity: typed key, version column, the whole record as jsonb."""
    cols = [Column(k, key_type) for k in key]
    if version_column:
        cols.append(Column(version_column, "timestamptz"))
    cols += extra or []
    cols.append(Column("record", "jsonb not null"))
    return RawTable(schema, name, cols, key=key, version_column=version_column)
