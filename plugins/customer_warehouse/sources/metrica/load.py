"""Land Metrica visits, hits and search phrases in ``raw_metrica`` (docs/raw-layer.md).

One run for business day D and one counter:

1. decide the dates: D − ``lookback_days`` … D (visits settle for ~3 days), or the whole history
   from ``start_date`` on the first run (no rows for the counter yet) or when ``window.full``;
2. plan requests: at most a year each, then as many days as ``evaluate`` allows;
3. per request: resume the saved ``request_id`` or create one and save its id (committed before
   polling), poll, download every part to a spool file, clean the request (cancel if aborted);
4. load all of it in ONE :class:`RawBatch`: delete the counter's dates, COPY every part, keep
   bad lines in quarantine, add new columns, and clear the saved request ids in that transaction.

Downloading everything before opening the transaction keeps it short: no table locks are held
while Metrica prepares logs, and a damaged part is simply fetched again. Spool files are on disk,
so an export of any size passes through in constant memory.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg import sql
from psycopg.pq import TransactionStatus

from ...loading import BatchResult, Column, FastPathRefused, RawBatch, RawTable, get_state, set_state
from ...loading.batch import COPY_WRITE
from ...loading.tables import ensure_meta_schema
from .. import Window
from .http import MetricaAPIError, MetricaError
from .logs_client import LogsClient, Part, PollTimeout, ProcessingFailed, RequestGone
from .reporting_client import SEARCH_DIMENSIONS, SEARCH_METRICS, ReportingClient
from .settings import MetricaSettings
from .tsv import escape, field_to_column, join_escaped_newlines, split_lines, to_copy_text

log = logging.getLogger(__name__)

SOURCE = "metrica"
SCHEMA = "raw_metrica"
MAX_REQUEST_DAYS = 365  # "one request covers at most 1 year"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATE_BYTES = re.compile(rb"\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True)
class LogSource:
    """A Logs API source and the raw table it lands in."""

    name: str  # the API's ``source``: visits | hits
    date_field: str
    date_column: str


VISITS = LogSource("visits", "ym:s:date", "visit_date")
HITS = LogSource("hits", "ym:pv:date", "hit_date")
_LEAD_COLUMNS = ("counter_id", "counter_timezone")


def log_table(src: LogSource, fields: Sequence[str]) -> RawTable:
    """``raw_metrica.visits`` / ``hits``: counter, date, counter time zone, a text column per field."""
    names = [field_to_column(f) for f in fields]
    clashes = {n for n in names if names.count(n) > 1 or n in (*_LEAD_COLUMNS, src.date_column)}
    if clashes:
        raise ValueError(f"Metrica fields map to clashing column names: {sorted(clashes)}")
    cols = [Column("counter_id", "bigint not null"), Column(src.date_column, "date not null"),
            Column("counter_timezone")]
    cols += [Column(n) for n in names]
    return RawTable(SCHEMA, src.name, cols, indexes=(("counter_id", src.date_column),))


def search_phrases_table() -> RawTable:
    cols = [Column("counter_id", "bigint not null"), Column("report_date", "date not null"),
            Column("search_phrase"), Column("start_url"), Column("utm_source"), Column("utm_medium"),
            Column("utm_campaign"), Column("utm_term"), Column("visits", "numeric"), Column("users", "numeric"),
            Column("sampled", "boolean"), Column("sample_share", "numeric"), Column("record", "jsonb not null")]
    return RawTable(SCHEMA, "search_phrases", cols, indexes=(("counter_id", "report_date"),))


# -- dates -------------------------------------------------------------------------------------
def _has_rows(conn, table: str, counter: int) -> bool:
    with conn.transaction():
        if conn.execute("select to_regclass(%s)", (f"{SCHEMA}.{table}",)).fetchone()[0] is None:
            return False
        return conn.execute(
            sql.SQL("select exists (select 1 from {} where counter_id = %s)").format(sql.Identifier(SCHEMA, table)),
            (counter,),
        ).fetchone()[0]


def _loaded_until(conn, entity: str, counter: int, tz: str) -> dt.date | None:
    """The day after the last date a successful batch loaded (from the ledger), if any."""
    with conn.transaction():
        ensure_meta_schema(conn)
        end = conn.execute(
            "select max(interval_end) from raw_meta.load_batches where source = %s and entity = %s and unit = %s "
            "and status = 'loaded'", (SOURCE, entity, str(counter)),
        ).fetchone()[0]
    return end.astimezone(_zone(tz)).date() if end else None


def pull_dates(conn, settings: MetricaSettings, window: Window, table: str, counter: int,
               tz: str) -> tuple[dt.date, dt.date, str]:
    """``(first, last, mode)``: D − lookback … D, reaching back to the last loaded date when runs
    were skipped (so no gap is left), or the whole history on the first run."""
    day = window.business_day
    if window.full or not _has_rows(conn, table, counter):
        return settings.start_date or day - dt.timedelta(days=365), day, "full"
    first = day - dt.timedelta(days=settings.lookback_days)
    until = _loaded_until(conn, table, counter, tz)
    if until is not None and until < first:
        log.info("Metrica counter %s: %s last loaded up to %s; pulling from there", counter, table, until)
        first = until
    return first, day, "window"


def plan_requests(logs: LogsClient, source: str, fields: Sequence[str], first: dt.date,
                  last: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Cut ``first``…``last`` into requests: from each start, as much as ``evaluate`` allows
    (never more than a year), so that every request fits and the count is known up front.

    A ``max_possible_day_quantity`` ≤ 0 means even one day does not fit (usually: the counter's
    log storage is full of uncleaned requests). Trying anyway only queues a request Metrica will
    refuse, so the run fails here, saying what to do.
    """
    chunks: list[tuple[dt.date, dt.date]] = []
    start = first
    while start <= last:
        end = min(last, start + dt.timedelta(days=MAX_REQUEST_DAYS - 1))
        try:
            possible, days = logs.evaluate(source, fields, start, end)
        except MetricaAPIError as exc:
            if end != last or exc.status != 400 or "date2" not in str(exc):
                raise
            # "date2 cannot be today" is judged in the counter's zone, where D may not have ended
            # yet when the run starts: pull up to the day before; the next run re-pulls D anyway
            log.warning("Metrica counter %s: %s is not over yet for the API (%s); pulling up to the day before",
                        logs.counter_id, last, exc)
            last -= dt.timedelta(days=1)
            continue
        if not possible:
            if days <= 0:
                raise MetricaError(
                    f"Metrica counter {logs.counter_id}: the Logs API cannot export even one day of {source} "
                    f"from {start} (max_possible_day_quantity={days}). Clean old log requests "
                    f"(GET …/logrequests, POST …/logrequest/<id>/clean) or request fewer fields."
                )
            end = min(end, start + dt.timedelta(days=days - 1))
        chunks.append((start, end))
        start = end + dt.timedelta(days=1)
    return chunks


# -- saved request ids -------------------------------------------------------------------------
def _state_key(source: str, first: dt.date, last: dt.date) -> str:
    return f"{source}:{first.isoformat()}:{last.isoformat()}"


def _load_state(conn, counter: int, key: str) -> dict[str, Any] | None:
    with conn.transaction():
        return get_state(conn, SOURCE, str(counter), key)


def _save_state(conn, counter: int, key: str, value: dict[str, Any]) -> None:
    # committed on its own, before polling: a retry on another worker must find it
    with conn.transaction():
        set_state(conn, SOURCE, str(counter), key, value)


def _saved_keys(conn, counter: int, source: str) -> dict[str, dict[str, Any]]:
    with conn.transaction():
        ensure_meta_schema(conn)
        rows = conn.execute(
            "select key, value from raw_meta.extract_state where source = %s and unit = %s and key like %s",
            (SOURCE, str(counter), f"{source}:%"),
        ).fetchall()
    return {k: v for k, v in rows}


# -- one request -------------------------------------------------------------------------------
def fetch_request(conn, logs: LogsClient, source: str, fields: Sequence[str], first: dt.date, last: dt.date,
                  spool: Path, attempts: int) -> list[Part]:
    """Resume or create the request for ``first``…``last``, wait, download, and release it."""
    counter = logs.counter_id
    key = _state_key(source, first, last)
    saved = _load_state(conn, counter, key)
    request_id: int | None = None
    if saved and list(saved.get("fields") or []) == list(fields):
        request_id = int(saved["request_id"])
        log.info("Metrica counter %s: resuming saved log request %s for %s", counter, request_id, key)
    created = 0
    while True:
        if request_id is None:
            if created >= attempts:
                raise MetricaError(
                    f"Metrica counter {counter}: log request for {source} {first}..{last} failed "
                    f"{attempts} times in a row (processing_failed); try again later"
                )
            created += 1
            request_id = logs.create(source, fields, first, last).request_id
            _save_state(conn, counter, key, {"request_id": request_id, "source": source, "date1": str(first),
                                             "date2": str(last), "fields": list(fields)})
        try:
            parts = logs.download(logs.wait(request_id), fields, spool)
        except (RequestGone, ProcessingFailed) as exc:
            log.warning("Metrica counter %s: %s; creating a new request", counter, exc)
            logs.release(request_id)
            request_id = None
            continue
        except PollTimeout:
            raise  # keep the queued request and its saved id: the next try resumes it
        except BaseException:
            logs.release(request_id)  # cancel if still pending, clean if processed
            raise
        logs.release(request_id)
        return parts


# -- parsing and loading -----------------------------------------------------------------------
class _Rejects:
    """Bad lines found while COPY streams: held on disk until the COPY ends, then quarantined
    (the quarantine itself is a COPY, and a connection runs one COPY at a time)."""

    def __init__(self, spool: Path, name: str):
        self.path = spool / f"{name}.rejects.jsonl"
        self.file = None

    def add(self, reason: str, raw: str, row_number: int) -> None:
        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")
        self.file.write(json.dumps([reason, raw, row_number], ensure_ascii=False) + "\n")

    def flush_into(self, batch: RawBatch, source_part: str) -> None:
        if self.file is None:
            return
        self.file.close()
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                reason, raw, row_number = json.loads(line)
                batch.quarantine(reason, raw, row_number=row_number, source_part=source_part)
        self.path.unlink()
        self.file = None


def _record_lines(batch: RawBatch, records: Iterable[tuple[int, bytes]], width: int, date_at: int, src: LogSource,
                  lead: str, tz_text: str, first: str, last: str, rejects: _Rejects) -> Iterator[str]:
    """COPY text lines of data records, one by one; bad ones go to ``rejects`` (counted as read)."""
    for no, raw in records:
        batch.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            rejects.add("not valid UTF-8", raw.decode("utf-8", "backslashreplace"), no)
            continue
        values = text.split("\t")
        if len(values) != width:
            rejects.add(f"{len(values)} columns where the header has {width}", text, no)
            continue
        day = values[date_at]
        if not _DATE.match(day) or not first <= day <= last:
            rejects.add(f"{src.date_field} {day!r} is not a date in {first}..{last}", text, no)
            continue
        yield f"{lead}{day}\t{tz_text}\t{to_copy_text(text)}"


# -- the fast path -----------------------------------------------------------------------------
SEGMENT = 16 << 20  # bytes of a part sent by one COPY (one savepoint); a refused one is re-walked
# After a backslash, what means the same to ClickHouse TSV and to COPY text (to_copy_text keeps
# it as it is): anything else — \0, \1…\9, \x.., \a, other letters, \. (end-of-data to COPY), a
# backslash-newline continuation, a byte ≥ 0x80 — sends the segment down the line-by-line path.
_NEEDS_REWRITE = re.compile(rb"\\[^\\tnrbfvN!\"#$%&'()*+,\-/:;<=>?@\[\]^_`{|}~ ]")


class _Segment:
    """About ``SEGMENT`` bytes of whole records of a part, read in pieces while COPY sends them."""

    def __init__(self, reader: _PartReader, first_line: int):
        self.reader, self.first_line = reader, first_line
        self.rows = 0
        self.raw: list[bytes] = []  # the pieces as read, for the line-by-line path if it comes to that
        self._size = 0

    def pieces(self) -> Iterator[bytes]:
        """Whole lines, about ``COPY_WRITE`` bytes at a time, up to the segment's size."""
        while self._size < SEGMENT and (piece := self.reader.piece()):
            self.raw.append(piece)
            self._size += len(piece)
            self.rows += piece.count(b"\n")
            yield piece

    def finish(self) -> None:
        """Read what a caller left unread (the fast path gives up midway)."""
        for _ in self.pieces():
            pass

    def data(self) -> bytes:
        """All of the segment, for the line-by-line path."""
        self.finish()
        return b"".join(self.raw)


class _PartReader:
    """A part's data lines (its header line left out) as segments. Pieces are cut only after a line
    that does not continue (one ending in an odd number of backslashes does), so every record lies
    in one piece; the last piece gets the final line feed a file may lack."""

    def __init__(self, path: Path):
        self.file = open(path, "rb")  # noqa: SIM115 - closed by close(), the part is read across calls
        self.carry = b""
        self.line_no = 2
        header = self.file.readline()
        self.eof = not header.endswith(b"\n")

    def segments(self) -> Iterator[_Segment]:
        try:
            while not self.eof or self.carry:
                segment = _Segment(self, self.line_no)
                yield segment
                segment.finish()  # a caller that stopped early still moves past it
                self.line_no += segment.rows
                if not segment.rows:
                    break
        finally:
            self.file.close()

    def piece(self) -> bytes:
        while not self.eof:
            more = self.file.read(min(COPY_WRITE, SEGMENT))
            if not more:
                self.eof = True
                break
            data = self.carry + more if self.carry else more
            cut = _record_end(data)
            if cut <= 0:  # one record longer than a piece: keep reading
                self.carry = data
                continue
            self.carry = data[cut:]
            return data[:cut]
        data, self.carry = self.carry, b""
        return data if not data or data.endswith(b"\n") else data + b"\n"


def _record_end(data: bytes) -> int:
    """The offset just after the last line feed of ``data`` that ends a record (0 if none)."""
    at = data.rfind(b"\n")
    while at >= 0:
        before = at
        while before > 0 and data[before - 1] == 0x5C:  # backslash
            before -= 1
        if (at - before) % 2 == 0:
            return at + 1
        at = data.rfind(b"\n", 0, at)
    return 0


def _day_of(segment: bytes, start: int, date_at: int) -> bytes | None:
    end = segment.find(b"\n", start)
    fields = segment[start:end].split(b"\t", date_at + 1)
    return fields[date_at] if len(fields) > date_at else None


def _fast_ok(segment: bytes) -> bool:
    """No byte the fast path would have to rewrite: no CR, no NUL, no escape whose meaning differs."""
    if b"\r" in segment or b"\0" in segment:
        return False
    return b"\\" not in segment or _NEEDS_REWRITE.search(segment) is None


def _with_days(segment: bytes, date_at: int, first: str, last: str) -> Iterator[bytes]:
    """The lines of ``segment`` (a piece of one), each with its date field appended again (for the
    typed date column), in pieces of about ``COPY_WRITE`` bytes.

    Lines of one date are contiguous in a Logs API part (it is ordered by date), so the lines are
    cut into runs of one date by bisection and each run gets its date with one ``replace``; if the
    order does not hold, the COPY's ``where`` (date field = appended date) drops rows, the count
    differs, and the segment goes line by line. A date outside ``first``…``last`` or not
    ``YYYY-MM-DD`` raises :class:`FastPathRefused`: those lines are quarantined line by line.
    """
    pieces: list[bytes] = []
    held = 0
    start, size = 0, len(segment)
    while start < size:
        day = _day_of(segment, start, date_at)
        if day is None or not _DATE_BYTES.match(day) or not first <= day.decode() <= last:
            raise FastPathRefused(f"a line with date field {day!r}, not a date in {first}..{last}")
        last_start = segment.rfind(b"\n", start, size - 1) + 1
        if last_start <= start or _day_of(segment, last_start, date_at) == day:
            end = size
        else:  # bisect between a line of ``day`` (lo) and the first line known to differ (hi)
            lo, hi = start, last_start
            while True:
                mid = segment.rfind(b"\n", lo, (lo + hi) // 2) + 1
                if mid <= lo:
                    mid = segment.find(b"\n", (lo + hi) // 2) + 1
                if mid >= hi:
                    break
                if _day_of(segment, mid, date_at) == day:
                    lo = mid
                else:
                    hi = mid
            end = hi
        pieces.append(segment[start:end].replace(b"\n", b"\t" + day + b"\n"))
        held += end - start
        start = end
        if held >= COPY_WRITE:
            yield b"".join(pieces)
            pieces.clear()
            held = 0
    if pieces:
        yield b"".join(pieces)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; intervals recorded in UTC", tz)
        return ZoneInfo("UTC")


def _interval(first: dt.date, last: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    zone = _zone(tz)
    return (dt.datetime.combine(first, dt.time(), zone),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone))


def _load_part(batch: RawBatch, table: RawTable, part: Part, src: LogSource, counter: int, tz: str, first: str,
               last: str, spool: Path) -> None:
    """One downloaded part: each segment straight into COPY when PostgreSQL takes it as it is
    (the counter, time zone and batch metadata come from column defaults, not from every line),
    else line by line with the bad lines quarantined. Either way each line is counted once."""
    name = f"request {part.request_id} part {part.number}"
    header = [field_to_column(f) for f in part.header]
    width, date_at = len(part.header), part.header.index(src.date_field)
    fast_columns = [*header, src.date_column]
    # each line's own date field must equal the date appended to it (to_char whatever DateStyle
    # says; the plain cast, cheaper per row, when the session writes ISO dates)
    as_text = ("{}::text" if (batch.conn.info.parameter_status("DateStyle") or "").startswith("ISO")
               else "to_char({}, 'YYYY-MM-DD')")
    check = sql.SQL("{} = " + as_text).format(sql.Identifier(header[date_at]), sql.Identifier(src.date_column))
    slow_columns = ["counter_id", src.date_column, "counter_timezone", *header]
    rejects = _Rejects(spool, part.path.stem)
    for segment in _PartReader(part.path).segments():
        if batch.copy_chunks(table, fast_columns, _fast_pieces(segment, date_at, first, last),
                             rows=lambda segment=segment: segment.rows, source_part=name, where=check,
                             constants={"counter_id": counter, "counter_timezone": tz}):
            batch.read(segment.rows)
            continue
        records = ((segment.first_line + no - 1, raw)
                   for no, raw in join_escaped_newlines(split_lines([segment.data()])))
        batch.copy_text(table, slow_columns, _record_lines(batch, records, width, date_at, src, f"{counter}\t",
                                                           to_copy_text(escape(tz)), first, last, rejects),
                        source_part=name)
        rejects.flush_into(batch, name)


def _fast_pieces(segment: _Segment, date_at: int, first: str, last: str) -> Iterator[bytes]:
    for piece in segment.pieces():
        if not _fast_ok(piece):
            raise FastPathRefused("a CR, NUL or an escape that COPY reads differently")
        yield from _with_days(piece, date_at, first, last)


def load_parts(conn, src: LogSource, counter: int, fields: Sequence[str], tz: str, first: dt.date, last: dt.date,
               parts: list[Part], mode: str, spool: Path, detail: dict[str, Any]) -> BatchResult:
    """Replace the counter's ``first``…``last`` with the downloaded parts, in one transaction."""
    with RawBatch(conn, SOURCE, src.name, unit=str(counter), interval=_interval(first, last, tz), mode=mode,
                  detail=detail) as batch:
        table = log_table(src, fields)
        table.ensure(conn)
        batch.note_drift(table, [field_to_column(f) for f in fields])
        batch.delete_where(table, sql.SQL("counter_id = %s and {} between %s and %s").format(
            sql.Identifier(src.date_column)), (counter, first, last))
        for part in parts:
            _load_part(batch, table, part, src, counter, tz, first.isoformat(), last.isoformat(), spool)
        conn.execute("delete from raw_meta.extract_state where source = %s and unit = %s and key like %s",
                     (SOURCE, str(counter), f"{src.name}:%"))
    assert batch.result is not None
    return batch.result


def load_logs(conn, logs: LogsClient, src: LogSource, fields: Sequence[str], window: Window,
              settings: MetricaSettings, tz: str) -> BatchResult:
    """Everything for one counter and one Logs API source: plan, fetch, load."""
    counter = logs.counter_id
    first, last, mode = pull_dates(conn, settings, window, src.name, counter, tz)
    chunks = plan_requests(logs, src.name, fields, first, last)
    last = chunks[-1][1] if chunks else first - dt.timedelta(days=1)  # an empty range replaces nothing
    log.info("Metrica counter %s: %s %s..%s (%s) in %d request(s)", counter, src.name, first, last, mode,
             len(chunks))
    _release_orphans(conn, logs, src.name, {_state_key(src.name, a, b) for a, b in chunks})
    with tempfile.TemporaryDirectory(prefix=f"metrica-{counter}-") as tmp:
        spool = Path(tmp)
        parts: list[Part] = []
        for i, (a, b) in enumerate(chunks, start=1):
            got = fetch_request(conn, logs, src.name, fields, a, b, spool, settings.request_attempts)
            rows = sum(p.rows for p in got)
            parts += got
            log.info("counter %s: %s chunk %d/%d %s..%s, %s rows", counter, src.name, i, len(chunks), a, b,
                     f"{rows:,}".replace(",", " "))
        detail = {"requests": [f"{a}..{b}" for a, b in chunks], "fields": list(fields), "counter_timezone": tz,
                  "parts": len(parts)}
        return load_parts(conn, src, counter, fields, tz, first, last, parts, mode, spool, detail)


def _release_orphans(conn, logs: LogsClient, source: str, planned: set[str]) -> None:
    """Requests saved by an earlier try under another plan: free them first, so they neither
    hold the queue ahead of ours nor use storage (their saved ids are dropped at load)."""
    for key, value in _saved_keys(conn, logs.counter_id, source).items():
        if key not in planned and isinstance(value, dict) and value.get("request_id"):
            log.info("Metrica counter %s: releasing request %s left by an earlier try (%s)", logs.counter_id,
                     value["request_id"], key)
            logs.release(int(value["request_id"]))


# -- search phrases ----------------------------------------------------------------------------
def _number(value: Any) -> float | int:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a number: {value!r}")
    if isinstance(value, int | float):
        return value
    return float(value)


def _phrase_row(row: Any, first: str, last: str) -> tuple[list[Any] | None, str]:
    """The typed columns of one report row, or None and why it is refused."""
    if not isinstance(row, dict):
        return None, "row is not an object"
    dims = row.get("dimensions") or []
    metrics = row.get("metrics") or []
    if len(dims) != len(SEARCH_DIMENSIONS) or len(metrics) != len(SEARCH_METRICS):
        return None, f"{len(dims)} dimensions and {len(metrics)} metrics, expected 7 and 2"
    values = [d.get("name") if isinstance(d, dict) else d for d in dims]
    day = values[0]
    if not isinstance(day, str) or not _DATE.match(day) or not first <= day <= last:
        return None, f"ym:s:date {day!r} is not a date in {first}..{last}"
    try:
        numbers = [_number(m) for m in metrics]
    except (TypeError, ValueError) as exc:
        return None, f"metrics: {exc}"
    return [day, *values[1:], *numbers], ""


def load_search_phrases(conn, reporting: ReportingClient, window: Window, settings: MetricaSettings,
                        tz: str) -> BatchResult:
    """Replace ``raw_metrica.search_phrases`` for the counter's dates from the Reporting API."""
    counter = reporting.counter_id
    first, last, mode = pull_dates(conn, settings, window, "search_phrases", counter, tz)
    with tempfile.TemporaryDirectory(prefix=f"metrica-report-{counter}-") as tmp:
        spool = Path(tmp) / "pages.jsonl"
        pages = 0
        with open(spool, "w", encoding="utf-8") as out:  # fetch first: no transaction open meanwhile
            for page in reporting.pages(first, last):
                pages += 1
                out.write(json.dumps({"offset": page.offset, "sampled": page.sampled,
                                      "sample_share": page.sample_share, "data": page.rows},
                                     ensure_ascii=False) + "\n")
        detail = {"pages": pages, "accuracy": reporting.accuracy}
        with RawBatch(conn, SOURCE, "search_phrases", unit=str(counter), interval=_interval(first, last, tz),
                      mode=mode, detail=detail) as batch:
            table = search_phrases_table()
            table.ensure(conn)
            batch.delete_where(table, sql.SQL("counter_id = %s and report_date between %s and %s"),
                               (counter, first, last))
            with open(spool, encoding="utf-8") as f:
                for line in f:
                    _load_page(batch, table, counter, json.loads(line), first.isoformat(), last.isoformat())
    assert batch.result is not None
    return batch.result


def _load_page(batch: RawBatch, table: RawTable, counter: int, page: dict[str, Any], first: str,
               last: str) -> None:
    name = f"offset {page['offset']}"
    good = []
    for i, row in enumerate(page["data"]):
        batch.read()
        values, why = _phrase_row(row, first, last)
        if values is None:
            batch.quarantine(why, json.dumps(row, ensure_ascii=False), row_number=page["offset"] + i,
                             source_part=name)
            continue
        good.append((counter, *values, page["sampled"], page["sample_share"], row))
    batch.copy_rows(table, [c.name for c in table.columns], good, source_part=name)


# -- entry point -------------------------------------------------------------------------------
def ready_connection(conn) -> None:
    """Saved request ids must be committed before polling, which a transaction the caller left
    open would prevent; commit it (there is nothing of ours in it yet)."""
    if not conn.autocommit and conn.info.transaction_status == TransactionStatus.INTRANS:
        log.info("committing the transaction left open on the warehouse connection")
        conn.commit()
