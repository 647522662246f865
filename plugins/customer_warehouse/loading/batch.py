"""One load of one entity for one interval: COPY, replace-or-upsert, ledger, quarantine.

All of it happens in one transaction, so dbt (and anyone else) sees either the previous
contents or the complete new batch, never a half-loaded window; a crash mid-COPY leaves nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import errors, sql
from psycopg.types.json import Jsonb

from .tables import META_COLUMNS, RawTable, ensure_meta_schema, setting_name

log = logging.getLogger(__name__)

QUARANTINE_FLUSH = 5_000
COPY_WRITE = 1 << 20  # bytes per copy.write: large enough that per-call overhead vanishes
_META_NAMES = [n for n, _ in META_COLUMNS]


class LoadInvariantError(RuntimeError):
    """Rows read ≠ rows loaded + rows quarantined: something would have been dropped silently."""


@dataclass
class BatchResult:
    batch_id: str
    source: str
    entity: str
    unit: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    seconds: float
    drift: list[str] = field(default_factory=list)
    unchanged: bool = False  # an input already loaded by batch_id, skipped (loading/unchanged.py)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def copy_text_value(value: Any) -> str:
    """One value in PostgreSQL COPY text format, read back as :meth:`RawBatch.copy_rows` would
    send it: dicts and lists as jsonb text, a NUL in text kept visibly (``_adapt``)."""
    if value is None:
        return r"\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dict | list):
        value = _dumps(value)
    else:
        value = str(value)
        if "\x00" in value:
            value = value.replace("\x00", "\\u0000")
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return value


class RawBatch:
    """Context manager around one batch. Usage::

        with RawBatch(conn, "amocrm", "leads", unit="acme", interval=(start, end), mode="upsert") as b:
            for record in client.leads(...):
                b.read()
                ...
            b.upsert_rows(table, columns, rows)
    """

    def __init__(self, conn, source: str, entity: str, *, unit: str = "",
                 interval: tuple[dt.datetime | None, dt.datetime | None] = (None, None),
                 mode: str = "window", detail: dict[str, Any] | None = None):
        self.conn = conn
        self.source, self.entity, self.unit = source, entity, unit
        self.interval = interval
        self.mode = mode
        self.detail = dict(detail or {})
        self.batch_id = str(uuid.uuid4())
        self.rows_read = 0
        self.rows_loaded = 0
        self.rows_quarantined = 0
        self.drift: list[str] = []
        self._quarantine_buf: list[tuple] = []
        self._setting_defaults: set[tuple[str, str]] = set()
        self._tx = None
        self._t0 = 0.0
        self._started = None
        self.result: BatchResult | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> RawBatch:
        self._t0 = time.monotonic()
        self._started = dt.datetime.now(dt.UTC)
        self._tx = self.conn.transaction()
        self._tx.__enter__()
        ensure_meta_schema(self.conn)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            try:
                self._finish()
            except BaseException as err:
                self._tx.__exit__(type(err), err, err.__traceback__)
                self._record_failure(err)
                raise
            self._tx.__exit__(None, None, None)
            assert self.result is not None
            log.info(
                "%s.%s[%s]: read %d, loaded %d, quarantined %d in %.1fs",
                self.source, self.entity, self.unit, self.rows_read, self.rows_loaded,
                self.rows_quarantined, self.result.seconds,
            )
            return False
        self._tx.__exit__(exc_type, exc, tb)
        self._record_failure(exc)
        return False

    def _finish(self) -> None:
        self._flush_quarantine()
        if self.rows_read != self.rows_loaded + self.rows_quarantined:
            raise LoadInvariantError(
                f"{self.source}.{self.entity}[{self.unit}]: read {self.rows_read} rows but loaded "
                f"{self.rows_loaded} and quarantined {self.rows_quarantined}; refusing to commit"
            )
        seconds = time.monotonic() - self._t0
        if self.drift:
            self.detail["new_columns"] = self.drift
        self.conn.execute(
            "insert into raw_meta.load_batches (batch_id, source, entity, unit, interval_start, interval_end, "
            "mode, status, rows_read, rows_loaded, rows_quarantined, started_at, finished_at, duration_seconds, "
            "detail) values (%s, %s, %s, %s, %s, %s, %s, 'loaded', %s, %s, %s, %s, now(), %s, %s)",
            (self.batch_id, self.source, self.entity, self.unit, self.interval[0], self.interval[1], self.mode,
             self.rows_read, self.rows_loaded, self.rows_quarantined, self._started, round(seconds, 3),
             Jsonb(self.detail)),
        )
        self.result = BatchResult(self.batch_id, self.source, self.entity, self.unit, self.rows_read,
                                  self.rows_loaded, self.rows_quarantined, round(seconds, 3), list(self.drift))

    def _record_failure(self, exc: BaseException | None) -> None:
        """Leave a trace of the failed batch (its data was rolled back) when the connection allows."""
        try:
            if self.conn.closed or self.conn.info.transaction_status not in (0,):  # IDLE
                return
            with self.conn.transaction():
                ensure_meta_schema(self.conn)
                self.conn.execute(
                    "insert into raw_meta.load_batches (batch_id, source, entity, unit, interval_start, "
                    "interval_end, mode, status, rows_read, started_at, finished_at, duration_seconds, detail) "
                    "values (%s, %s, %s, %s, %s, %s, %s, 'failed', %s, %s, now(), %s, %s)",
                    (self.batch_id, self.source, self.entity, self.unit, self.interval[0], self.interval[1],
                     self.mode, self.rows_read, self._started, round(time.monotonic() - self._t0, 3),
                     Jsonb({**self.detail, "error": f"{type(exc).__name__}: {exc}"[:2000]})),
                )
        except Exception as err:  # never mask the original error
            log.warning("could not record failed batch %s: %s", self.batch_id, err)

    # -- counting and quarantine ---------------------------------------------------------------
    def read(self, n: int = 1) -> None:
        """Count rows taken from the source (before validation)."""
        self.rows_read += n

    def quarantine(self, reason: str, raw_text: str | bytes | None, *, row_number: int | None = None,
                   source_part: str | None = None) -> None:
        """Keep a bad record with the reason it was refused. It counts toward the balance."""
        if isinstance(raw_text, bytes):
            raw_text = raw_text.decode("utf-8", errors="backslashreplace")
        if raw_text is not None:
            raw_text = raw_text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
        self._quarantine_buf.append((self.batch_id, self.source, self.entity, source_part, row_number,
                                     reason[:1000], raw_text))
        self.rows_quarantined += 1
        if len(self._quarantine_buf) >= QUARANTINE_FLUSH:
            self._flush_quarantine()

    def _flush_quarantine(self) -> None:
        if not self._quarantine_buf:
            return
        with self.conn.cursor() as cur, cur.copy(
            "copy raw_meta.quarantine (batch_id, source, entity, source_part, row_number, reason, raw_text) "
            "from stdin"
        ) as cp:
            for row in self._quarantine_buf:
                cp.write_row(row)
        self._quarantine_buf.clear()

    # -- writing -------------------------------------------------------------------------------
    def note_drift(self, table: RawTable, names: list[str]) -> list[str]:
        """Add columns a source started sending; they are kept and reported in the ledger."""
        added = table.add_columns(self.conn, names)
        for name in added:
            self.conn.execute(
                "insert into raw_meta.schema_drift (source, entity, column_name, first_batch_id) "
                "values (%s, %s, %s, %s) on conflict do nothing",
                (self.source, table.name, name, self.batch_id),
            )
            log.warning("%s.%s: new column %r kept (schema drift)", self.source, table.name, name)
        self.drift += added
        return added

    def delete_where(self, table: RawTable, where: sql.Composable, params: Sequence[Any] = ()) -> int:
        """Remove the rows this batch replaces (an interval, a counter's dates, a whole snapshot)."""
        cur = self.conn.execute(sql.SQL("delete from {} where {}").format(table.ident, where), params)
        return cur.rowcount

    def _meta_values(self, source_part: str | None) -> tuple:
        return (self.batch_id, self.interval[0], self.interval[1], dt.datetime.now(dt.UTC), source_part)

    def copy_rows(self, table: RawTable, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                  *, source_part: str | None = None, target: sql.Composable | None = None) -> int:
        """COPY rows (tuples in ``columns`` order) into the table, adding the load metadata."""
        meta = self._meta_values(source_part)
        cols = sql.SQL(", ").join(map(sql.Identifier, [*columns, *_META_NAMES]))
        n = 0
        with self.conn.cursor() as cur, cur.copy(
            sql.SQL("copy {} ({}) from stdin").format(target or table.ident, cols)
        ) as cp:
            for row in rows:
                cp.write_row((*(_adapt(v) for v in row), *meta))
                n += 1
        if target is None:
            self.rows_loaded += n
        return n

    def copy_text(self, table: RawTable, columns: Sequence[str], lines: Iterable[str],
                  *, source_part: str | None = None, target: sql.Composable | None = None) -> int:
        """COPY lines already in PostgreSQL text format (tab-separated, backslash-escaped).

        The fast path for TSV exports whose escaping matches COPY's: no per-value work in Python.
        ``target`` (a staging table) as in :meth:`copy_rows`: its rows are not counted as loaded.
        """
        suffix = "\t" + "\t".join(copy_text_value(v) for v in self._meta_values(source_part)) + "\n"
        cols = sql.SQL(", ").join(map(sql.Identifier, [*columns, *_META_NAMES]))
        n = 0
        buf: list[str] = []
        size = 0
        with self.conn.cursor() as cur, cur.copy(
            sql.SQL("copy {} ({}) from stdin").format(target or table.ident, cols)
        ) as cp:
            for line in lines:
                chunk = line + suffix
                buf.append(chunk)
                size += len(chunk)
                n += 1
                if size >= 1 << 20:
                    cp.write("".join(buf))
                    buf.clear()
                    size = 0
            if buf:
                cp.write("".join(buf))
        if target is None:
            self.rows_loaded += n
        return n

    def copy_chunks(self, table: RawTable, columns: Sequence[str], chunks: Iterable[bytes], *,
                    rows: int | Callable[[], int],
                    source_part: str | None = None, constants: Mapping[str, Any] | None = None,
                    where: sql.Composable | None = None) -> bool:
        """COPY bytes already in PostgreSQL text format, all or nothing: the optimistic fast path.

        ``chunks`` hold whole lines of ``columns`` (no per-line work here: they go to the server as
        they are, in writes of at most ``COPY_WRITE`` bytes). The batch metadata and ``constants``
        (column → value, the same for every line) are not appended to the lines: they are set once
        as ``cw.<column>`` settings that the table's column defaults read, folded by PostgreSQL to
        one constant per COPY (``RawTable.ensure_setting_defaults``). ``where`` may filter rows on
        the server; a filtered row makes the count differ. ``chunks`` may be a generator that
        raises :class:`FastPathRefused` to give up midway.

        Runs under a savepoint. Returns True when PostgreSQL took exactly ``rows`` rows (a number,
        or a function asked once the chunks are sent: a streamed source knows its count only
        then); False, with nothing of it left in the table, when it refused the data (a wrong field count, an
        escape or encoding it cannot read, a NUL...) or took a different number of rows — the
        caller then walks the same lines one by one to quarantine the bad ones. Count the rows as
        read (``read``) only once they are loaded, or on the slow path.
        """
        constants = dict(constants or {})
        meta = dict(zip(_META_NAMES, self._meta_values(source_part), strict=True))
        defaulted = [*constants, *(n for n in _META_NAMES if n not in columns)]
        values = {**meta, **constants}
        key = (table.schema, table.name)
        if key not in self._setting_defaults:
            table.ensure_setting_defaults(self.conn, defaulted)
            self._setting_defaults.add(key)
        settings = sql.SQL(", ").join(
            sql.SQL("set_config({}, {}, true)").format(sql.Literal(setting_name(n)),
                                                       sql.Literal(_setting_text(values[n])))
            for n in defaulted)
        self.conn.execute(sql.SQL("select {}").format(settings))
        statement = sql.SQL("copy {} ({}) from stdin").format(
            table.ident, sql.SQL(", ").join(map(sql.Identifier, columns)))
        if where is not None:
            statement = sql.SQL("{} where {}").format(statement, where)
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                with cur.copy(statement) as cp:
                    for chunk in chunks:
                        view = memoryview(chunk)
                        for at in range(0, len(view), COPY_WRITE):
                            cp.write(view[at:at + COPY_WRITE])
                expected = rows() if callable(rows) else rows
                if cur.rowcount != expected:
                    raise FastPathRefused(f"PostgreSQL took {cur.rowcount} of {expected} rows")
        except (FastPathRefused, errors.DataError, errors.IntegrityError, errors.ProgramLimitExceeded) as exc:
            log.info("%s.%s: fast COPY of %s refused (%s); loading it line by line",
                     self.source, self.entity, source_part or table.name, (str(exc).splitlines() or [""])[0][:300])
            return False
        self.rows_loaded += expected
        return True

    def upsert_rows(self, table: RawTable, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                    *, source_part: str | None = None) -> int:
        """Upsert by the table's key, keeping the newest ``version_column`` (also within the batch)."""
        stage = self._stage(table)
        n = self.copy_rows(table, columns, rows, source_part=source_part, target=stage)
        self._merge(table, columns, stage)
        self.rows_loaded += n
        return n

    def upsert_text(self, table: RawTable, columns: Sequence[str], lines: Iterable[str],
                    *, source_part: str | None = None) -> int:
        """:meth:`upsert_rows` of lines already in COPY text format (as :meth:`copy_text` takes
        them): for sources that format their rows faster than a per-value ``write_row``."""
        stage = self._stage(table)
        n = self.copy_text(table, columns, lines, source_part=source_part, target=stage)
        self._merge(table, columns, stage)
        self.rows_loaded += n
        return n

    def _stage(self, table: RawTable) -> sql.Identifier:
        """An empty temporary copy of ``table`` (dropped at commit) to upsert from."""
        if not table.key:
            raise ValueError(f"{table.schema}.{table.name} has no key to upsert on")
        stage = sql.Identifier(f"_stage_{table.name}")
        self.conn.execute(sql.SQL("create temp table if not exists {} (like {} including defaults) on commit drop")
                          .format(stage, table.ident))
        self.conn.execute(sql.SQL("truncate {}").format(stage))
        return stage

    def _merge(self, table: RawTable, columns: Sequence[str], stage: sql.Identifier) -> None:
        """Insert the staged rows, the newest ``version_column`` winning (also within the stage)."""
        all_cols = [*columns, *_META_NAMES]
        key = sql.SQL(", ").join(map(sql.Identifier, table.key))
        cols = sql.SQL(", ").join(map(sql.Identifier, all_cols))
        updates = sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in all_cols if c not in table.key
        )
        order = key
        guard = sql.SQL("")
        if table.version_column:
            v = sql.Identifier(table.version_column)
            order = sql.SQL("{}, {} desc nulls last").format(key, v)
            guard = sql.SQL(" where {t}.{v} is null or excluded.{v} >= {t}.{v}").format(t=table.ident, v=v)
        self.conn.execute(
            sql.SQL("insert into {t} ({cols}) select distinct on ({key}) {cols} from {s} order by {order} "
                    "on conflict ({key}) do update set {updates}{guard}").format(
                t=table.ident, cols=cols, key=key, s=stage, order=order, updates=updates, guard=guard)
        )


class FastPathRefused(Exception):
    """Raised by the chunks given to :meth:`RawBatch.copy_chunks` (or by it) when the data cannot
    go to COPY as it is; the COPY is abandoned and the caller takes the line-by-line path."""


def _setting_text(value: Any) -> str:
    """A value as the text of a setting (its column default casts it back)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _adapt(value: Any) -> Any:
    """Python values COPY cannot take as they are: dicts/lists become jsonb, NUL bytes are escaped."""
    if isinstance(value, dict | list):
        return Jsonb(value, dumps=_dumps)
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", "\\u0000")
    return value


# a JSON \u0000 escape that is not itself an escaped backslash followed by "u0000" (the text
# "\\u0000" in JSON is a literal backslash-u, which jsonb takes; only a NUL is refused)
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def keep_nul_visible(json_text: str) -> str:
    """JSON text jsonb accepts: it refuses the NUL escape, so a NUL becomes the visible text
    backslash-u0000 instead of failing the whole batch."""
    return _NUL_ESCAPE.sub(r"\1\\\\u0000", json_text) if "\\u0000" in json_text else json_text


def _dumps(obj: Any) -> str:
    return keep_nul_visible(json.dumps(obj, ensure_ascii=False, default=str))
