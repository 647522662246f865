"""Raw table definitions and the ``raw_meta`` bookkeeping schema.

A raw table keeps the whole original record: ``record jsonb`` for API JSON, one text column per
field for TSV exports. Every raw table also carries the load metadata columns below, so any row
can be traced to the batch, interval and file or page it came from.
"""

from __future__ import annotations

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


def ensure_meta_schema(conn) -> None:
    """Create ``raw_meta`` if missing. Idempotent; safe inside a transaction."""
    # serialise concurrent first runs (parallel mapped tasks) on one advisory lock
    conn.execute("select pg_advisory_xact_lock(hashtext('customer_warehouse.raw_meta'))")
    conn.execute(META_DDL)


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
        conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"{self.schema}.{self.name}",))
        conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(self.schema)))
        defs = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.type)) for c in self.columns]
        defs += [sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in META_COLUMNS]
        if self.key:
            defs.append(sql.SQL("primary key ({})").format(sql.SQL(", ").join(map(sql.Identifier, self.key))))
        conn.execute(sql.SQL("create table if not exists {} ({})").format(self.ident, sql.SQL(", ").join(defs)))
        for idx in self.indexes:
            name = f"{self.name}_{'_'.join(idx)}_idx"[:63]
            conn.execute(
                sql.SQL("create index if not exists {} on {} ({})").format(
                    sql.Identifier(name), self.ident, sql.SQL(", ").join(map(sql.Identifier, idx))
                )
            )
        self._known = set(existing_columns(conn, self.schema, self.name))

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


def existing_columns(conn, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
        "order by ordinal_position",
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
