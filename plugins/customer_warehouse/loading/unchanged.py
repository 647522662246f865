"""Skip an export file that is already loaded: same bytes, same settings, same parser code.

File exports (CRM files, survey files) are re-read whole every night, yet most nights some of
them are the very file loaded the night before (nobody exported, a weekend). Re-loading one costs
the parse and COPY, and makes every incremental model downstream re-read all its rows, to land
what is already there. A load therefore records a *fingerprint* of its input in the ledger
(``detail.fingerprint``): the file's SHA-256, whatever else decides how it is parsed (the business
time zone, a mapping file) and a hash of the parser's own source, so a fixed parser re-loads.
The next load of the same (source, entity, unit) skips when the latest loaded batch has the same
fingerprint and its rows are still in the table.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from psycopg import sql

from .batch import BatchResult
from .tables import RawTable

log = logging.getLogger(__name__)


def code_hash(modules: Iterable[ModuleType]) -> str:
    """SHA-256 of the modules' source files: any change to the parser re-loads every file."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint(file_sha256: str, *settings: str) -> str:
    return hashlib.sha256("\x1f".join((file_sha256, *settings)).encode()).hexdigest()


def already_loaded(conn, source: str, entity: str, unit: str, fingerprint: str, table: RawTable) -> BatchResult | None:
    """The result to report instead of loading (no rows read), or None when the input must load:
    the latest loaded batch of (source, entity, unit) landed another fingerprint (or none), or
    none of its rows is left in ``table`` (the raw table was emptied, or that load was all
    quarantined; a re-load is then cheap and says so)."""
    # in a transaction of its own: a connection left open in one would turn the load's
    # transaction into a savepoint, and a failed load could no longer leave its ledger row
    with conn.transaction():
        latest = _latest_with_rows(conn, source, entity, unit, table)
    if latest is None or latest[1] != fingerprint:
        return None
    log.info("%s %s[%s]: the input is unchanged since batch %s (same fingerprint), not loaded again",
             source, entity, unit, latest[0])
    return BatchResult(latest[0], source, entity, unit, 0, 0, 0, 0.0, unchanged=True)


def _latest_with_rows(conn, source: str, entity: str, unit: str, table: RawTable) -> tuple[str, str] | None:
    exists = conn.execute("select to_regclass('raw_meta.load_batches') is not null").fetchone()[0]
    if not exists:
        return None
    latest = conn.execute(
        "select batch_id::text, detail ->> 'fingerprint' from raw_meta.load_batches "
        "where source = %s and entity = %s and unit = %s and status = 'loaded' "
        "order by finished_at desc nulls last limit 1", (source, entity, unit)).fetchone()
    if latest is None or latest[1] is None:
        return None
    if conn.execute("select to_regclass(%s) is null", (f"{table.schema}.{table.name}",)).fetchone()[0]:
        return None
    rows_left = conn.execute(
        sql.SQL("select exists (select from {} where _batch_id = %s)").format(sql.Identifier(table.schema, table.name)),
        (latest[0],)).fetchone()[0]
    return latest if rows_left else None
