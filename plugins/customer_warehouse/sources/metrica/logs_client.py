"""Yandex Metrica Logs API client: evaluate, create, poll, download parts, clean, cancel.

The calls follow the documented contract (docs: /work/shared/reference/sources.md), not any one
emulator: ``…/management/v1/counter/{id}/logrequests/evaluate``, ``POST …/logrequests``,
``GET …/logrequest/{request_id}``, ``…/part/{n}/download``, ``POST …/clean`` and ``…/cancel``.

Downloads are checked before anyone loads them: a part is streamed to a spool file (never
held in memory), and it is fetched again when the connection drops, the body is shorter than
``Content-Length``, or its size disagrees with the ``parts[].size`` the poll reported. Each
part's own header line is checked against the requested fields and left for the parser.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .http import MetricaAPIError, MetricaError, MetricaHTTP

log = logging.getLogger(__name__)

FINAL_FAILED = {"processing_failed", "canceled", "cleaned_by_user", "cleaned_automatically_as_too_old"}
PENDING = {"created", "awaiting_retry"}


class RequestGone(MetricaError):
    """The saved request no longer exists, was cleaned or cancelled: create a new one."""


class ProcessingFailed(MetricaError):
    """Metrica could not prepare the log (``processing_failed``): create a new request."""


class PollTimeout(MetricaError):
    """The request is still being prepared after the allowed wait. It is left alive (and its id
    saved), so the task's next try resumes polling it instead of queueing a new one."""


class PartIntegrityError(MetricaError):
    """A part kept arriving damaged (truncated, wrong size, wrong header)."""


@dataclass(frozen=True)
class LogRequest:
    request_id: int
    status: str
    size: int | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> LogRequest:
        data = body.get("log_request", body)
        return cls(int(data["request_id"]), str(data.get("status", "")), data.get("size"),
                   list(data.get("parts") or []), data)


@dataclass(frozen=True)
class Part:
    """A downloaded part spooled to disk, checked, with its header still in place."""

    request_id: int
    number: int
    path: Path
    header: list[str]
    rows: int
    size: int


@dataclass(frozen=True)
class PollSettings:
    interval: float = 5.0
    max_interval: float = 60.0
    timeout: float = 1800.0


MAX_FIELDS_CHARS = 3000


def _fields_param(fields: Sequence[str]) -> str:
    joined = ",".join(fields)
    if len(joined) > MAX_FIELDS_CHARS:  # the API would refuse it; say which setting to shorten
        raise MetricaError(f"Metrica fields list is {len(joined)} characters, the Logs API takes at most "
                           f"{MAX_FIELDS_CHARS}: shorten visit_fields / hit_fields in the connection extra")
    return joined


class LogsClient:
    """Logs API calls for one counter."""

    def __init__(self, http: MetricaHTTP, counter_id: int, *, poll: PollSettings | None = None,
                 download_attempts: int = 3, attribution: str | None = None):
        self.http = http
        self.counter_id = counter_id
        self.poll = poll or PollSettings()
        self.download_attempts = download_attempts
        self.attribution = attribution
        self.prefix = f"/management/v1/counter/{counter_id}"

    # -- plain calls ---------------------------------------------------------------------------
    def counter_timezone(self) -> str | None:
        """The counter's time zone setting (``ym:s:dateTime`` is written in it), if readable."""
        try:
            body = self.http.json("GET", self.prefix)
        except MetricaAPIError as exc:  # an emulator or proxy without the management endpoint
            log.warning("Metrica counter %s: time zone not readable (%s)", self.counter_id, exc)
            return None
        counter = body.get("counter", body) if isinstance(body, dict) else {}
        return counter.get("time_zone_name") or counter.get("timezone")

    def _params(self, source: str, fields: Sequence[str], date1: dt.date, date2: dt.date) -> dict[str, str]:
        params = {"date1": date1.isoformat(), "date2": date2.isoformat(), "source": source,
                  "fields": _fields_param(fields)}
        if self.attribution:
            params["attribution"] = self.attribution
        return params

    def evaluate(self, source: str, fields: Sequence[str], date1: dt.date, date2: dt.date) -> tuple[bool, int]:
        """``(possible, max_possible_day_quantity)`` for the period."""
        body = self.http.json("GET", f"{self.prefix}/logrequests/evaluate",
                              self._params(source, fields, date1, date2))
        ev = body.get("log_request_evaluation", body)
        return bool(ev.get("possible")), int(ev.get("max_possible_day_quantity") or 0)

    def create(self, source: str, fields: Sequence[str], date1: dt.date, date2: dt.date) -> LogRequest:
        body = self.http.json("POST", f"{self.prefix}/logrequests", self._params(source, fields, date1, date2))
        req = LogRequest.parse(body)
        log.info("Metrica counter %s: created log request %s (%s %s..%s)", self.counter_id, req.request_id,
                 source, date1, date2)
        return req

    def info(self, request_id: int) -> LogRequest:
        try:
            return LogRequest.parse(self.http.json("GET", f"{self.prefix}/logrequest/{request_id}"))
        except MetricaAPIError as exc:
            if exc.status in (400, 404):
                raise RequestGone(f"counter {self.counter_id}: log request {request_id} not found: {exc}") from exc
            raise

    def clean(self, request_id: int) -> None:
        self.http.json("POST", f"{self.prefix}/logrequest/{request_id}/clean")

    def cancel(self, request_id: int) -> None:
        self.http.json("POST", f"{self.prefix}/logrequest/{request_id}/cancel")

    def list(self) -> list[dict[str, Any]]:
        return list(self.http.json("GET", f"{self.prefix}/logrequests").get("requests") or [])

    def release(self, request_id: int) -> None:
        """Free the request's quota whatever its state: cancel if still pending, else clean.

        Best effort (used in ``finally``): a failure is logged, never raised over the real error.
        """
        try:
            status = self.info(request_id).status
            if status in PENDING:
                self.cancel(request_id)
            elif status in ("processed", "processing_failed"):
                self.clean(request_id)
        except RequestGone:
            pass
        except Exception as exc:
            log.warning("Metrica counter %s: could not release log request %s: %s", self.counter_id,
                        request_id, exc)

    # -- lifecycle -----------------------------------------------------------------------------
    def wait(self, request_id: int) -> LogRequest:
        """Poll until ``processed``, with growing pauses, for at most ``poll.timeout`` seconds."""
        deadline = time.monotonic() + self.poll.timeout
        pause = self.poll.interval
        while True:
            req = self.info(request_id)
            if req.status == "processed":
                return req
            if req.status == "processing_failed":
                raise ProcessingFailed(f"counter {self.counter_id}: log request {request_id} processing_failed")
            if req.status in FINAL_FAILED:
                raise RequestGone(f"counter {self.counter_id}: log request {request_id} is {req.status}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PollTimeout(
                    f"counter {self.counter_id}: log request {request_id} still '{req.status}' after "
                    f"{self.poll.timeout:.0f}s; left queued, the next try resumes polling it"
                )
            time.sleep(min(pause, remaining))
            pause = min(self.poll.max_interval, pause * 1.5)

    def download(self, req: LogRequest, fields: Sequence[str], spool: Path) -> list[Part]:
        """Every part of a processed request, each checked and spooled under ``spool``."""
        numbers = sorted(int(p["part_number"]) for p in req.parts) if req.parts else [0]
        sizes = {int(p["part_number"]): p.get("size") for p in req.parts}
        return [self._download_part(req.request_id, n, sizes.get(n), fields, spool) for n in numbers]

    def _download_part(self, request_id: int, number: int, reported: Any, fields: Sequence[str],
                       spool: Path) -> Part:
        path = spool / f"{self.counter_id}-{request_id}-{number}.tsv"
        problem = ""
        for attempt in range(1, self.download_attempts + 1):
            try:
                size, rows, header = self._fetch(request_id, number, path)
            except (httpx.TransportError, _ShortBody) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                problem = _check_part(size, rows, header, reported, fields)
                if not problem:
                    return Part(request_id, number, path, header, rows, size)
            log.warning("Metrica counter %s: request %s part %s damaged (%s); download %d/%d", self.counter_id,
                        request_id, number, problem, attempt, self.download_attempts)
        raise PartIntegrityError(
            f"counter {self.counter_id}: log request {request_id} part {number} still damaged after "
            f"{self.download_attempts} downloads: {problem}"
        )

    def _fetch(self, request_id: int, number: int, path: Path) -> tuple[int, int, list[str]]:
        """Stream one part to ``path``; returns (bytes, data rows, header fields)."""
        size = newlines = 0
        first = b""
        last = b"\n"
        with self.http.stream(f"{self.prefix}/logrequest/{request_id}/part/{number}/download") as response, \
                open(path, "wb") as out:
            expected = response.headers.get("content-length")
            for chunk in response.iter_bytes():
                if not chunk:
                    continue
                out.write(chunk)
                size += len(chunk)
                newlines += chunk.count(b"\n")
                if b"\n" not in first and len(first) < 1 << 16:
                    first += chunk
                last = chunk
        if expected is not None and int(expected) != size:  # httpx normally raises first
            raise _ShortBody(f"{size} bytes of {expected}")
        lines = newlines + (0 if last.endswith(b"\n") or size == 0 else 1)
        header = first.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", "replace").split("\t") if size else []
        return size, max(0, lines - 1), header


class _ShortBody(Exception):
    pass


def _check_part(size: int, rows: int, header: list[str], reported: Any, fields: Sequence[str]) -> str:
    """Why a downloaded part is not to be trusted, or ''.

    ``parts[].size`` is documented as the part's size in bytes; an independent implementation
    might count rows instead, so either reading is accepted — truncation fails both.
    """
    if not header:
        return "empty part (no header line)"
    if sorted(header) != sorted(fields) or len(set(header)) != len(header):
        return f"header {header[:5]}… does not match the requested fields"
    if reported not in (None, 0) and int(reported) not in (size, rows, rows + 1):
        return f"{size} bytes / {rows} rows but the request reported size {reported}"
    return ""
