"""Yandex Metrica emulator: the Logs API request lifecycle and the Reporting API.

Serves ``DIR/metrica/<counter>/`` (docs/demo-dataset.md): ``visits.tsv`` (and ``hits.tsv``)
already in Metrica's TSV shape, ``counter.json`` and ``search_phrases.jsonl``. What it
implements is the protocol of /work/shared/reference/sources.md, so that clients are tested
against the contract:

* ``Authorization: OAuth <token>``: missing → 401, wrong token or unknown counter → 403;
* evaluate / create validate ``date1``, ``date2`` (< today, ≤ 1 year), ``source``, ``fields``
  (known, ≤ 3000 chars) and answer 400 ``invalid_parameter`` errors in the documented shape;
* requests are processed FIFO, each taking ``processing_seconds``; at most ``max_parallel``
  may wait at once (429 ``quota_parallel_requests`` with ``Retry-After``); uncleaned requests
  stand for the 10 GB storage (``max_uncleaned``: evaluate then says 0 days, create refuses);
* ``fail_requests`` makes the next N requests end in ``processing_failed``; ``cut_downloads``
  makes the next N downloads lose their last line with a matching ``Content-Length`` (a proxy
  that cut the body cleanly: only ``parts[].size`` can reveal it);
* parts of ``part_rows`` rows, each with its own header line; download before ``processed``
  is an error; clean and cancel; list;
* ``/stat/v1/data`` with offset (from 1) / limit (≤ 100,000) paging, grouping by the requested
  dimensions, and ``sampled`` / ``sample_share`` (``sample_share`` < 1 unless ``accuracy=full``).

TSV files are never read whole: an index of byte offsets by date (files are sorted by date) is
built once per file, and parts are streamed from it. Faults are injected by :mod:`.faults`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from . import faults

MAX_FIELDS_CHARS = 3000
MAX_LIMIT = 100_000
DATE_FIELDS = {"visits": "ym:s:date", "hits": "ym:pv:date"}
REPORT_METRICS = ("ym:s:visits", "ym:s:users")
_DATE = re.compile(rb"^\d{4}-\d{2}-\d{2}$")


class ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str, location: str | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message
        self.location, self.retry_after = location, retry_after

    def response(self) -> JSONResponse:
        err = {"error_type": self.error_type, "message": self.message}
        if self.location:
            err["location"] = self.location
        headers = {}
        if self.retry_after is not None:
            ra = self.retry_after
            headers["Retry-After"] = str(math.ceil(ra)) if ra >= 1 else f"{max(ra, 0.05):.2f}"
        return JSONResponse({"errors": [err], "code": self.status, "message": self.message},
                            status_code=self.status, headers=headers)


# -- files -------------------------------------------------------------------------------------
@dataclass
class PartSpec:
    start: int
    end: int
    rows: int
    size: int


class LogFile:
    """A sorted Metrica TSV file with a by-date index of byte ranges."""

    def __init__(self, path: Path, date_field: str):
        self.path = path
        with open(path, "rb") as f:
            head = f.readline()
            self.data_start = len(head)
        self.header = head.rstrip(b"\r\n").decode("utf-8").split("\t")
        if date_field not in self.header:
            raise ValueError(f"{path}: no {date_field} column")
        self.date_at = self.header.index(date_field)
        self.mtime = path.stat().st_mtime
        self._index: list[tuple[str, int, int]] | None = None
        self._lock = threading.Lock()

    def index(self) -> list[tuple[str, int, int]]:
        """``[(date, first byte, end byte)]`` in file order; malformed lines go with their neighbours."""
        with self._lock:
            if self._index is None:
                out: list[list[Any]] = []
                pos = self.data_start
                with open(self.path, "rb") as f:
                    f.seek(pos)
                    for line in f:
                        cols = line.split(b"\t", self.date_at + 1)
                        day = cols[self.date_at].strip() if len(cols) > self.date_at else b""
                        if _DATE.match(day) and (not out or out[-1][0] != day.decode()):
                            out.append([day.decode(), pos, pos])
                        pos += len(line)
                        if out:
                            out[-1][2] = pos
                self._index = [tuple(x) for x in out]
            return self._index

    def region(self, d1: dt.date, d2: dt.date) -> tuple[int, int]:
        inside = [(s, e) for day, s, e in self.index() if d1.isoformat() <= day <= d2.isoformat()]
        if not inside:
            return 0, 0
        return min(s for s, _ in inside), max(e for _, e in inside)

    def projector(self, fields: list[str]):
        """Line → the requested columns; a line of the wrong width passes through untouched."""
        idx = [self.header.index(f) for f in fields]
        width = len(self.header)

        def project(line: bytes) -> bytes:
            body = line[:-1] if line.endswith(b"\n") else line
            cols = body.split(b"\t")
            if len(cols) != width:
                return body + b"\n"
            return b"\t".join(cols[i] for i in idx) + b"\n"

        return project

    def lines(self, start: int, end: int) -> Iterator[bytes]:
        with open(self.path, "rb") as f:
            f.seek(start)
            pos = start
            while pos < end:
                line = f.readline()
                if not line:
                    return
                pos += len(line)
                yield line

    def plan_parts(self, d1: dt.date, d2: dt.date, fields: list[str], part_rows: int) -> list[PartSpec]:
        head = len(("\t".join(fields) + "\n").encode())
        start, end = self.region(d1, d2)
        project = self.projector(fields)
        parts: list[PartSpec] = []
        cur = PartSpec(start, start, 0, head)
        pos = start
        for line in self.lines(start, end):
            cur.rows += 1
            cur.size += len(project(line))
            pos += len(line)
            cur.end = pos
            if cur.rows >= part_rows:
                parts.append(cur)
                cur = PartSpec(pos, pos, 0, head)
        if cur.rows or not parts:
            parts.append(cur)
        return parts

    def stream_part(self, spec: PartSpec, fields: list[str]) -> Iterator[bytes]:
        project = self.projector(fields)
        buf = [("\t".join(fields) + "\n").encode()]
        size = len(buf[0])
        for line in self.lines(spec.start, spec.end):
            out = project(line)
            buf.append(out)
            size += len(out)
            if size >= 1 << 16:
                yield b"".join(buf)
                buf, size = [], 0
        if buf:
            yield b"".join(buf)


# -- request state -----------------------------------------------------------------------------
@dataclass
class LogRequest:
    request_id: int
    counter_id: int
    source: str
    date1: dt.date
    date2: dt.date
    fields: list[str]
    attribution: str | None
    ready_at: float
    fail: bool
    status: str = "created"
    parts: list[PartSpec] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id, "counter_id": self.counter_id, "source": self.source,
            "date1": self.date1.isoformat(), "date2": self.date2.isoformat(), "fields": self.fields,
            "status": self.status,
        }
        if self.attribution:
            out["attribution"] = self.attribution
        if self.parts is not None and self.status == "processed":
            out["size"] = sum(p.size for p in self.parts)
            out["parts"] = [{"part_number": i, "size": p.size} for i, p in enumerate(self.parts)]
        return out


@dataclass
class MetricaState:
    data_dir: Path
    today: dt.date
    token: str
    max_days_per_request: int
    processing_seconds: float
    part_rows: int
    max_parallel: int
    max_uncleaned: int
    fail_requests: int
    sample_share: float
    max_possible_day_quantity: int | None
    hide_rare_phrases: bool
    cut_downloads: int = 0
    requests: dict[int, LogRequest] = field(default_factory=dict)
    calls: list[tuple[str, int]] = field(default_factory=list)
    _files: dict[tuple[int, str], LogFile] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1000))
    lock: threading.RLock = field(default_factory=threading.RLock)

    def count(self, op: str) -> int:
        return sum(1 for o, _ in self.calls if o == op)

    def counter_dir(self, counter: int) -> Path:
        return self.data_dir / "metrica" / str(counter)

    def log_file(self, counter: int, source: str) -> LogFile:
        path = self.counter_dir(counter) / f"{source}.tsv"
        if not path.exists():
            raise ApiError(400, "invalid_parameter", f"no {source} logs for counter {counter}", "source")
        with self.lock:
            cached = self._files.get((counter, source))
            if cached is None or cached.mtime != path.stat().st_mtime:
                cached = self._files[(counter, source)] = LogFile(path, DATE_FIELDS[source])
            return cached

    def refresh(self, req: LogRequest) -> LogRequest:
        """Move a request on by the clock: created → processed / processing_failed."""
        with self.lock:
            if req.status == "created" and time.monotonic() >= req.ready_at:
                if req.fail:
                    req.status = "processing_failed"
                else:
                    req.parts = self.log_file(req.counter_id, req.source).plan_parts(
                        req.date1, req.date2, req.fields, self.part_rows)
                    req.status = "processed"
            return req

    def in_processing(self) -> list[LogRequest]:
        return [r for r in self.requests.values() if self.refresh(r).status == "created"]

    def uncleaned(self, counter: int) -> int:
        return sum(1 for r in self.requests.values()
                   if r.counter_id == counter and self.refresh(r).status in ("created", "processed"))

    def mpdq(self, counter: int) -> int:
        if self.uncleaned(counter) >= self.max_uncleaned:
            return 0
        if self.max_possible_day_quantity is not None:
            return self.max_possible_day_quantity
        return self.max_days_per_request


# -- validation --------------------------------------------------------------------------------
def _parse_date(value: str | None, name: str, today: dt.date) -> dt.date:
    if not value:
        raise ApiError(400, "invalid_parameter", f"{name} is required", name)
    value = value.strip()
    if value == "today":
        return today
    if value == "yesterday":
        return today - dt.timedelta(days=1)
    m = re.fullmatch(r"(\d+)daysAgo", value)
    if m:
        return today - dt.timedelta(days=int(m.group(1)))
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "invalid_parameter", f"{name} must be YYYY-MM-DD, got {value!r}", name) from None


def _log_params(state: MetricaState, counter: int, q) -> tuple[str, dt.date, dt.date, list[str]]:
    source = q.get("source") or ""
    if source not in DATE_FIELDS:
        raise ApiError(400, "invalid_parameter", "source must be visits or hits", "source")
    d1 = _parse_date(q.get("date1"), "date1", state.today)
    d2 = _parse_date(q.get("date2"), "date2", state.today)
    if d1 > d2:
        raise ApiError(400, "invalid_parameter", "date1 is after date2", "date1")
    if d2 >= state.today:
        raise ApiError(400, "invalid_parameter", f"date2 must be before today ({state.today})", "date2")
    if (d2 - d1).days + 1 > 366:
        raise ApiError(400, "invalid_parameter", "a log request covers at most one year", "date1")
    raw_fields = q.get("fields") or ""
    if len(raw_fields) > MAX_FIELDS_CHARS:
        raise ApiError(400, "invalid_parameter", f"fields longer than {MAX_FIELDS_CHARS} characters", "fields")
    fields = [f.strip() for f in raw_fields.split(",") if f.strip()]
    if not fields:
        raise ApiError(400, "invalid_parameter", "fields is required", "fields")
    known = state.log_file(counter, source).header
    unknown = [f for f in fields if f not in known]
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown fields for source {source}: {', '.join(unknown)}",
                       "fields")
    return source, d1, d2, fields


# -- app ---------------------------------------------------------------------------------------
def _manifest_today(data_dir: Path) -> dt.date:
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        today = json.loads(manifest.read_text(encoding="utf-8")).get("today")
        if today:
            return dt.date.fromisoformat(today) + dt.timedelta(days=1)
    return dt.date.today()


def create_app(data_dir, *, today: dt.date | str | None = None, token: str = "demo-token",
               max_days_per_request: int = 31, processing_seconds: float = 0.2, part_rows: int = 50_000,
               max_parallel: int = 3, max_uncleaned: int = 100, fail_requests: int = 0,
               sample_share: float = 1.0, max_possible_day_quantity: int | None = None,
               hide_rare_phrases: bool = False, cut_downloads: int = 0) -> FastAPI:
    """The Metrica emulator over ``data_dir`` (the dataset root holding ``metrica/``).

    ``today`` is the API's "today" (``date2`` must be before it); default: the manifest's
    ``today`` + 1 day, so the demo's business day itself can be exported.
    State and counters are on ``app.state.metrica`` (e.g. ``.count("create")``, ``.fail_requests``).
    """
    data_dir = Path(data_dir)
    if isinstance(today, str):
        today = dt.date.fromisoformat(today)
    state = MetricaState(
        data_dir=data_dir, today=today or _manifest_today(data_dir), token=token,
        max_days_per_request=max_days_per_request, processing_seconds=processing_seconds, part_rows=part_rows,
        max_parallel=max_parallel, max_uncleaned=max_uncleaned, fail_requests=fail_requests,
        sample_share=sample_share, max_possible_day_quantity=max_possible_day_quantity,
        hide_rare_phrases=hide_rare_phrases, cut_downloads=cut_downloads,
    )
    app = FastAPI(title="Yandex Metrica emulator")
    app.state.metrica = state
    # the by-date index of every log file now rather than in the first request's processing (the
    # bench calls this before it starts timing: Metrica's own storage is not the client's cost)
    app.state.warm = lambda: [state.log_file(int(d.name), source).index()
                              for d in sorted((data_dir / "metrica").glob("[0-9]*")) if d.is_dir()
                              for source in DATE_FIELDS if (d / f"{source}.tsv").exists()]
    faults.install(app)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        return exc.response()

    def auth(request: Request, counter: int, op: str) -> None:
        state.calls.append((op, counter))
        header = request.headers.get("authorization", "")
        if not header:
            raise ApiError(401, "unauthorized", "OAuth token is missing")
        scheme, _, value = header.partition(" ")
        if scheme.lower() not in ("oauth", "bearer") or value.strip() != state.token:
            raise ApiError(403, "invalid_token", "invalid OAuth token")
        if not state.counter_dir(counter).is_dir():
            raise ApiError(403, "access_denied", f"no access to counter {counter}")

    def get_request(counter: int, request_id: int) -> LogRequest:
        req = state.requests.get(request_id)
        if req is None or req.counter_id != counter:
            raise ApiError(404, "not_found", f"log request {request_id} not found")
        return state.refresh(req)

    base = "/management/v1/counter/{counter}"

    @app.get(base)
    def counter_info(counter: int, request: Request):
        auth(request, counter, "counter")
        path = state.counter_dir(counter) / "counter.json"
        info = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return {"counter": {"id": counter, "name": info.get("name", str(counter)), "status": "Active",
                            "time_zone_name": info.get("timezone", "Europe/Moscow")}}

    @app.get(base + "/logrequests/evaluate")
    def evaluate(counter: int, request: Request):
        auth(request, counter, "evaluate")
        _source, d1, d2, _fields = _log_params(state, counter, request.query_params)
        days = state.mpdq(counter)
        return {"log_request_evaluation": {"possible": 0 < (d2 - d1).days + 1 <= days,
                                           "max_possible_day_quantity": days}}

    @app.post(base + "/logrequests")
    def create(counter: int, request: Request):
        auth(request, counter, "create")
        source, d1, d2, fields = _log_params(state, counter, request.query_params)
        with state.lock:
            if state.uncleaned(counter) >= state.max_uncleaned:
                raise ApiError(400, "invalid_parameter", "not enough free log storage: clean old requests")
            if (d2 - d1).days + 1 > state.mpdq(counter):
                raise ApiError(400, "invalid_parameter", "the period is too large for one request: "
                               "split it by max_possible_day_quantity from evaluate", "date1")
            waiting = state.in_processing()
            if len(waiting) >= state.max_parallel:
                wait = min(r.ready_at for r in waiting) - time.monotonic()
                raise ApiError(429, "quota_parallel_requests",
                               f"at most {state.max_parallel} log requests may be processed at once",
                               retry_after=max(wait, 0.05))
            # FIFO: processing starts when the requests still queued ahead of it are done
            busy_until = max((r.ready_at for r in waiting), default=time.monotonic())
            ready_at = max(busy_until, time.monotonic()) + state.processing_seconds
            fail = state.fail_requests > 0
            if fail:
                state.fail_requests -= 1
            req = LogRequest(next(state._ids), counter, source, d1, d2, fields,
                             request.query_params.get("attribution"), ready_at, fail)
            state.requests[req.request_id] = req
        return {"log_request": req.as_json()}

    @app.get(base + "/logrequests")
    def list_requests(counter: int, request: Request):
        auth(request, counter, "list")
        return {"requests": [state.refresh(r).as_json() for r in state.requests.values()
                             if r.counter_id == counter]}

    @app.get(base + "/logrequest/{request_id}")
    def info(counter: int, request_id: int, request: Request):
        auth(request, counter, "info")
        return {"log_request": get_request(counter, request_id).as_json()}

    @app.get(base + "/logrequest/{request_id}/part/{part}/download")
    def download(counter: int, request_id: int, part: int, request: Request):
        auth(request, counter, "download")
        req = get_request(counter, request_id)
        if req.status != "processed" or req.parts is None:
            raise ApiError(400, "invalid_parameter", f"log request {request_id} is {req.status}, not processed")
        if not 0 <= part < len(req.parts):
            raise ApiError(400, "invalid_parameter", f"no part {part}", "part")
        spec = req.parts[part]
        body = state.log_file(counter, req.source).stream_part(spec, req.fields)
        with state.lock:
            cut = state.cut_downloads > 0
            state.cut_downloads -= cut
        if cut:
            whole = b"".join(body)
            short = whole[: whole.rstrip(b"\n").rfind(b"\n") + 1]
            return Response(short, media_type="text/tab-separated-values; charset=utf-8")
        return StreamingResponse(body, media_type="text/tab-separated-values; charset=utf-8",
                                 headers={"Content-Length": str(spec.size)})

    @app.post(base + "/logrequest/{request_id}/clean")
    def clean(counter: int, request_id: int, request: Request):
        auth(request, counter, "clean")
        req = get_request(counter, request_id)
        if req.status not in ("processed", "processing_failed"):
            raise ApiError(400, "invalid_parameter", f"log request {request_id} is {req.status}; only processed "
                           "requests can be cleaned")
        req.status = "cleaned_by_user"
        return {"log_request": req.as_json()}

    @app.post(base + "/logrequest/{request_id}/cancel")
    def cancel(counter: int, request_id: int, request: Request):
        auth(request, counter, "cancel")
        req = get_request(counter, request_id)
        if req.status != "created":
            raise ApiError(400, "invalid_parameter", f"log request {request_id} is {req.status}; only requests "
                           "not yet processed can be cancelled")
        req.status = "canceled"
        return {"log_request": req.as_json()}

    @app.get("/stat/v1/data")
    def report(request: Request):
        q = request.query_params
        ids = [i for i in (q.get("ids") or "").split(",") if i.strip()]
        if not ids or not all(i.strip().isdigit() for i in ids):
            raise ApiError(400, "invalid_parameter", "ids is required", "ids")
        for counter in ids:
            auth(request, int(counter), "report")
        return _report(state, int(ids[0]), q)

    return app


# -- reporting ---------------------------------------------------------------------------------
def _report(state: MetricaState, counter: int, q) -> dict[str, Any]:
    metrics = [m for m in (q.get("metrics") or "").split(",") if m]
    dims = [d for d in (q.get("dimensions") or "").split(",") if d]
    if not metrics:
        raise ApiError(400, "invalid_parameter", "metrics is required", "metrics")
    if len(metrics) > 20 or len(dims) > 10:
        raise ApiError(400, "invalid_parameter", "at most 20 metrics and 10 dimensions", "metrics")
    try:
        limit = int(q.get("limit", 100))
        offset = int(q.get("offset", 1))
    except ValueError:
        raise ApiError(400, "invalid_parameter", "limit and offset must be integers", "limit") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, "invalid_parameter", f"limit must be 1..{MAX_LIMIT}", "limit")
    if offset < 1:
        raise ApiError(400, "invalid_parameter", "offset starts at 1", "offset")
    d1 = _parse_date(q.get("date1") or "6daysAgo", "date1", state.today)
    d2 = _parse_date(q.get("date2") or "today", "date2", state.today)
    if d1 > d2:
        raise ApiError(400, "invalid_parameter", "date1 is after date2", "date1")
    unknown = [m for m in metrics if m not in REPORT_METRICS]
    if unknown:
        raise ApiError(400, "invalid_parameter", f"unknown metrics: {', '.join(unknown)}", "metrics")
    groups = _grouped(state, counter, dims, metrics, d1, d2)
    rows = [{"dimensions": [{"name": v} for v in key], "metrics": vals} for key, vals in groups.items()]
    _sort(rows, q.get("sort") or "-" + metrics[0], dims, metrics)
    share = 1.0 if (q.get("accuracy") or "").lower() in ("full", "1") else state.sample_share
    totals = [sum(r["metrics"][i] for r in rows) for i in range(len(metrics))]
    return {
        "query": {"ids": [counter], "dimensions": dims, "metrics": metrics, "date1": d1.isoformat(),
                  "date2": d2.isoformat(), "limit": limit, "offset": offset},
        "data": rows[offset - 1: offset - 1 + limit],
        "total_rows": len(rows), "total_rows_rounded": False,
        "sampled": share < 1.0, "sample_share": share,
        "contains_sensitive_data": False, "totals": totals,
    }


def _grouped(state: MetricaState, counter: int, dims: list[str], metrics: list[str], d1: dt.date,
             d2: dt.date) -> dict[tuple, list[float]]:
    path = state.counter_dir(counter) / "search_phrases.jsonl"
    groups: dict[tuple, list[float]] = {}
    if not path.exists():
        return groups
    first, last = d1.isoformat(), d2.isoformat()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            row = json.loads(line)
            if not first <= str(row.get("ym:s:date", "")) <= last:
                continue
            if state.hide_rare_phrases and (row.get("ym:s:users") or 0) < 10:
                row["ym:s:lastSearchPhrase"] = None
            missing = [d for d in dims if d not in row]
            if missing:
                raise ApiError(400, "invalid_parameter", f"unknown dimensions: {', '.join(missing)}", "dimensions")
            key = tuple(row[d] for d in dims)
            acc = groups.setdefault(key, [0] * len(metrics))
            for i, m in enumerate(metrics):
                acc[i] += row.get(m) or 0
    return groups


def _sort(rows: list[dict[str, Any]], spec: str, dims: list[str], metrics: list[str]) -> None:
    """Stable sorts from the last key to the first; None sorts first, as Metrica shows empties."""
    keys = [s for s in spec.split(",") if s]
    for key in reversed(keys):
        desc = key.startswith("-")
        name = key.lstrip("-")
        if name in dims:
            i = dims.index(name)
            rows.sort(key=lambda r, i=i: (r["dimensions"][i]["name"] is not None,
                                          str(r["dimensions"][i]["name"] or "")), reverse=desc)
        elif name in metrics:
            i = metrics.index(name)
            rows.sort(key=lambda r, i=i: r["metrics"][i], reverse=desc)
        else:
            raise ApiError(400, "invalid_parameter", f"cannot sort by {name}", "sort")


# -- fixtures ----------------------------------------------------------------------------------
def write_counter(data_dir, counter_id: int, *, visits_header: list[str] | None = None,
                  visits: list[list[str] | str] | None = None, hits_header: list[str] | None = None,
                  hits: list[list[str] | str] | None = None, search_phrases: list[dict] | None = None,
                  timezone: str = "Europe/Moscow", today: str | None = None) -> Path:
    """Write one counter's files in the dataset layout (small fixtures for tests and trials).

    Rows are lists of values already in Metrica's escaping, or whole raw lines (for broken input).
    """
    root = Path(data_dir)
    folder = root / "metrica" / str(counter_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "counter.json").write_text(json.dumps({"id": counter_id, "name": f"counter {counter_id}",
                                                     "timezone": timezone}), encoding="utf-8")
    for name, header, rows in (("visits", visits_header, visits), ("hits", hits_header, hits)):
        if header is None:
            continue
        with open(folder / f"{name}.tsv", "w", encoding="utf-8", newline="") as f:
            f.write("\t".join(header) + "\n")
            for row in rows or []:
                f.write((row if isinstance(row, str) else "\t".join(row)) + "\n")
    if search_phrases is not None:
        with open(folder / "search_phrases.jsonl", "w", encoding="utf-8") as f:
            for row in search_phrases:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if today:
        manifest = root / "manifest.json"
        data = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else {}
        data["today"] = today
        data.setdefault("counters", [])
        if counter_id not in data["counters"]:
            data["counters"].append(counter_id)
        manifest.write_text(json.dumps(data), encoding="utf-8")
    return folder
