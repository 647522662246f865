"""HTTP client of the Bitrix24 REST API through an incoming webhook.

Three ways to read a list, each where it pays:

* :meth:`Bitrix24Client.offset_pages` — ``start``/``next`` paging (50 rows a call). The first call
  gives ``total``; with ``use_batch`` the remaining pages go out as ``batch`` calls of up to 50
  commands each, so a 2,500-row list costs two round trips instead of fifty.
* :meth:`Bitrix24Client.cursor_pages` — the documented fast path for bulk loads: ``order ID ASC``,
  ``filter >ID last``, ``start=-1`` (the portal skips counting, which is what makes deep offsets
  slow), one request per 50 rows.
* :meth:`Bitrix24Client.id_walk` — the same walk, 50 pages per request: one ``batch`` whose command
  ``pK`` filters ``>ID $result[pK-1][49][ID]`` (the last ID of the page before, substituted by the
  portal while the batch runs). Used for history loads and, selecting only ``ID``, for the IDs
  that find deleted records (:meth:`Bitrix24Client.id_pages`, streamed page by page). A short page ends the walk and
  everything later in that batch is dropped: the portal does not fail a reference to a row that
  is not there, it substitutes what it reached (docs/bitrix24.md), so those commands list garbage.

The portal's leaky bucket (50 requests, draining 2/s) is mirrored client-side so the client
rarely meets 503 ``QUERY_LIMIT_EXCEEDED``; when it does (other integrations share the bucket) it
backs off and retries, as for 429 (per-method time limit), other 5xx and transport errors — all
bounded. 401 is final and says why.

Time-outs: a read time-out is not a refusal — the portal is still working on the request we
abandoned, and it still costs it. A ``batch`` of 50 list commands is legitimately slower than one
call (deep ``start`` offsets are slow at the portal), so after a read time-out the retry waits
twice as long as the attempt before (30 s, 60 s, then 120 s at most): re-sending the same work with
the same too-short patience only piles abandoned requests onto the portal and fails the same way
every time (the small benchmark's incremental did, seven times). ``batch_timeout`` sets a batch's
first wait apart from ``timeout`` when a portal is known to be slow.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

log = logging.getLogger(__name__)

PAGE = 50
BATCH_MAX = 50


class Bitrix24Error(RuntimeError):
    """The portal answered an error the client cannot recover from."""


class Bitrix24AuthError(Bitrix24Error):
    """401: the webhook secret is wrong or revoked, or the OAuth token expired."""


class LeakyBucket:
    """Client-side mirror of the portal's bucket: ``capacity`` requests, draining ``rate`` a second.

    ``headroom`` keeps a few slots free for other integrations sharing the portal's bucket.
    ``rate`` 0 (or ``None``) switches the mirror off: every request goes at once. That is for
    emulators with their limit lifted and benchmarks of the client only — a real portal answers
    503 ``QUERY_LIMIT_EXCEEDED`` to a client that does not pace itself."""

    def __init__(self, capacity: float = 50, rate: float | None = 2.0, headroom: float = 2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.capacity = max(1.0, capacity - headroom)
        self.rate = rate or 0.0
        self.clock, self.sleep = clock, sleep
        self.level = 0.0
        self.last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            while True:
                now = self.clock()
                self.level = max(0.0, self.level - (now - self.last) * self.rate)
                self.last = now
                if self.level + 1 <= self.capacity + 1e-6:  # a sleep may end a rounding error short
                    self.level += 1
                    return
                self.sleep((self.level + 1 - self.capacity) / self.rate)


_SHARED: dict[tuple[str, float, float | None], LeakyBucket] = {}
_SHARED_LOCK = threading.Lock()


def shared_bucket(webhook_url: str, capacity: float, rate: float | None) -> LeakyBucket:
    """One bucket mirror per portal in this process, shared by every client of that portal (the
    portal's bucket is per portal, not per connection)."""
    with _SHARED_LOCK:
        key = (webhook_url, capacity, rate)
        if key not in _SHARED:
            _SHARED[key] = LeakyBucket(capacity, rate)
        return _SHARED[key]


def php_query(params: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Flatten nested parameters PHP-style (``filter[>ID]=5``, ``select[0]=*``) for batch commands."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, dict):
            pairs += php_query(value, name)
        elif isinstance(value, list | tuple):
            pairs += php_query({str(i): v for i, v in enumerate(value)}, name)
        else:
            pairs.append((name, "" if value is None else str(value)))
    return pairs


def command(method: str, params: dict[str, Any]) -> str:
    """One ``batch`` command line: ``method?query``."""
    return method + "?" + "&".join(f"{quote(k, safe='[]')}={quote(v, safe='')}" for k, v in php_query(params))


@dataclass(frozen=True)
class Page:
    part: str
    rows: list[Any]


def _int_id(row: Any) -> int | None:
    if isinstance(row, dict):
        try:
            return int(row.get("ID"))
        except (TypeError, ValueError):
            return None
    return None


def _unbind(resp: httpx.Response) -> None:
    """Let a read response go when the caller drops it. httpx 0.28 binds a response and its stream
    in a reference cycle (``response.stream`` → ``BoundSyncStream`` → ``response``; encode/httpx
    PR #3733), so every answer — a history batch is ~2.5 MB of body plus its text — waited for a
    full cyclic garbage collection: the loader's memory grew with the history it read (deals at
    80,000 customers: 11 → 47 MB traced over 29 committed chunks). The body is already read (not a
    streamed request), so an empty stream takes the bound one's place and the cycle is gone."""
    resp.stream = httpx.ByteStream(b"")


class Bitrix24Client:
    """One portal. ``webhook_url`` is ``https://portal/rest/<user_id>/<secret>``."""

    def __init__(self, webhook_url: str, *, capacity: float = 50, drain_rate: float | None = 2.0,
                 max_retries: int = 6, backoff_base: float = 1.0, backoff_max: float = 60.0,
                 timeout: float = 30.0, use_batch: bool = True, batch_size: int = BATCH_MAX,
                 chain_pages: int = BATCH_MAX, batch_timeout: float | None = None):
        """``capacity``/``drain_rate``: the client-side throttle (burst and requests a second);
        ``drain_rate`` 0 or ``None`` switches it off (emulators and benchmarks only).
        ``chain_pages``: pages (commands) per ``batch`` of :meth:`id_walk`, 1…50.
        ``timeout``/``batch_timeout``: seconds to wait for a call's / a batch's answer (the
        latter defaults to the former; doubled on each retry after a read time-out, up to 4x)."""
        self.url = webhook_url.rstrip("/")
        self.bucket = shared_bucket(self.url, capacity, drain_rate)
        self.max_retries = max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.use_batch = use_batch
        self.batch_size = max(1, min(batch_size, BATCH_MAX))
        self.chain_pages = max(1, min(chain_pages, BATCH_MAX))
        self.timeout, self.batch_timeout = timeout, batch_timeout or timeout
        self.requests_made = 0
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": "customer-warehouse/bitrix24"})

    def __enter__(self) -> Bitrix24Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- one call ------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        return min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max) * (1 + random.random() / 4)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST one method; the whole answer (``result``, ``total``, ``next``, ``time``)."""
        attempt = 0
        patience = self.batch_timeout if method == "batch" else self.timeout
        while True:
            self.bucket.acquire()
            self.requests_made += 1
            try:
                resp = self._http.post(f"{self.url}/{method}.json", json=params or {},
                                       timeout=httpx.Timeout(self.timeout, read=patience))
                _unbind(resp)
                data = resp.json()
            except httpx.ReadTimeout as exc:
                problem = f"{exc!r} after {patience:.0f}s"
                base = self.batch_timeout if method == "batch" else self.timeout
                patience = min(patience * 2, base * 4)  # the portal is busy with it: wait longer
            except (httpx.TransportError, ValueError) as exc:
                problem = f"{exc!r}"
            else:
                if resp.status_code == 200 and isinstance(data, dict) and "error" not in data:
                    return data
                error = data.get("error") if isinstance(data, dict) else None
                description = data.get("error_description", "") if isinstance(data, dict) else ""
                if resp.status_code == 401:
                    raise Bitrix24AuthError(
                        f"{method}: 401 {error}: {description} — the webhook secret was rejected or the token "
                        "expired; check the connection (host /rest/<user>/<secret>, or password = secret)")
                if not (resp.status_code in (429, 503) or resp.status_code >= 500
                        or error in ("QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT")):
                    raise Bitrix24Error(f"{method}: HTTP {resp.status_code} {error}: {description}")
                problem = f"HTTP {resp.status_code} {error}"
            attempt += 1
            self._wait_to_retry(method, problem, attempt)

    def _wait_to_retry(self, method: str, problem: str, attempt: int) -> None:
        """Sleep the backoff before retry ``attempt``, or give up past ``max_retries``."""
        if attempt > self.max_retries:
            raise Bitrix24Error(f"{method}: {problem}; gave up after {attempt} attempts")
        delay = self._backoff(attempt)
        log.warning("bitrix24 %s: %s; retry %d in %.1fs", method, problem, attempt, delay)
        time.sleep(delay)

    def batch(self, commands: dict[str, tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
        """Run up to 50 independent commands in one call: key → {result, total?, next?}."""
        if len(commands) > BATCH_MAX:
            raise ValueError(f"batch takes at most {BATCH_MAX} commands")
        data = self.call("batch", {"halt": 0, "cmd": {k: command(m, p) for k, (m, p) in commands.items()}})
        res = data.get("result") or {}
        errors = res.get("result_error") or {}
        if errors:
            raise Bitrix24Error(f"batch: commands failed: {errors}")
        out = {}
        for key in commands:
            if key not in (res.get("result") or {}):
                raise Bitrix24Error(f"batch: no result for command {key!r}")
            entry: dict[str, Any] = {"result": res["result"][key]}
            for field, name in (("result_total", "total"), ("result_next", "next")):
                if isinstance(res.get(field), dict) and key in res[field]:
                    entry[name] = res[field][key]
            out[key] = entry
        return out

    # -- lists ---------------------------------------------------------------------------------
    def offset_pages(self, method: str, params: dict[str, Any]) -> Iterator[Page]:
        """``start``/``next`` paging; after the first page, the rest in batches when enabled."""
        first = self.call(method, {**params, "start": 0})
        yield Page(f"{method} start=0", list(first.get("result") or []))
        nxt = first.get("next")
        if nxt is None:
            return
        total = int(first.get("total") or 0)
        if not self.use_batch or not total:
            while nxt is not None:
                answer = self.call(method, {**params, "start": nxt})
                yield Page(f"{method} start={nxt}", list(answer.get("result") or []))
                nxt = answer.get("next")
            return
        starts = list(range(int(nxt), total, PAGE))
        for i in range(0, len(starts), self.batch_size):
            group = starts[i:i + self.batch_size]
            answers = self.batch({f"p{s}": (method, {**params, "start": s}) for s in group})
            for s in group:
                yield Page(f"{method} start={s} (batch)", list(answers[f"p{s}"]["result"] or []))

    def cursor_pages(self, method: str, params: dict[str, Any], after_id: int = 0) -> Iterator[Page]:
        """The fast path: ``order ID ASC``, ``filter >ID``, ``start=-1``; stops on a short page."""
        last = after_id
        while True:
            flt = {**(params.get("filter") or {}), ">ID": last}
            answer = self.call(method, {**params, "filter": flt, "order": {"ID": "ASC"}, "start": -1})
            rows = list(answer.get("result") or [])
            yield Page(f"{method} >ID {last}", rows)
            ids = [i for i in map(_int_id, rows) if i is not None]
            if len(rows) < PAGE:
                return
            if not ids or max(ids) <= last:
                raise Bitrix24Error(f"{method}: ID cursor stuck at {last} (a full page without a higher ID)")
            last = max(ids)

    def id_walk(self, method: str, params: dict[str, Any], after_id: int = 0) -> Iterator[Page]:
        """Every page of the ``>ID`` walk, ``chain_pages`` pages per ``batch`` request.

        The pages, their order and their rows are exactly :meth:`cursor_pages`'; only the number of
        requests differs (one per 50 pages instead of one per page). Without ``use_batch`` it *is*
        :meth:`cursor_pages`. Inside a batch, command ``pK`` (K ≥ 1) reads ``>ID`` from
        ``$result[pK-1][49][ID]``; its answer is used only when the page before it was full and its
        50th row carries the highest ID of that page (else the reference would not have given the
        cursor the page-by-page walk would use), and only when none of its IDs is at or below that
        cursor. Anything else ends the batch early and the next batch starts from the last ID seen,
        so a portal that substitutes something unexpected costs a request, never a wrong row.
        """
        if not self.use_batch:
            yield from self.cursor_pages(method, params, after_id)
            return
        base = dict(params.get("filter") or {})
        last = after_id
        attempt = 0
        while True:
            cmds = {}
            for k in range(self.chain_pages):
                cursor: Any = last if k == 0 else f"$result[p{k - 1}][{PAGE - 1}][ID]"
                cmds[f"p{k}"] = command(method, {**params, "filter": {**base, ">ID": cursor},
                                                 "order": {"ID": "ASC"}, "start": -1})
            data = self.call("batch", {"halt": 1, "cmd": cmds})
            res = data.get("result") or {}
            results = res.get("result") or {}
            errors = res.get("result_error") or {}
            progressed = False
            for k in range(self.chain_pages):
                key = f"p{k}"
                if not isinstance(results, dict) or key not in results:  # PHP's empty array is []
                    error = errors.get(key) if isinstance(errors, dict) else None
                    code = error.get("error") if isinstance(error, dict) else None
                    if code not in ("QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT"):
                        raise Bitrix24Error(f"batch {method} >ID walk: command {key} failed: "
                                            f"{error or errors or 'no result'}")
                    if not progressed:  # the batch's first page hit a limit: back off like a 503
                        attempt += 1
                        self._wait_to_retry(method, f"{code} in batch", attempt)
                    break
                rows = list(results[key] or [])
                ids = [i for i in map(_int_id, rows) if i is not None]
                if k and any(i <= last for i in ids):
                    log.warning("bitrix24 %s: chained page %s went back to ID %d (cursor %d); continuing from %d",
                                method, key, min(ids), last, last)
                    break
                yield Page(f"{method} >ID {last}", rows)
                progressed, attempt = True, 0
                if len(rows) < PAGE:
                    return
                if not ids or max(ids) <= last:
                    raise Bitrix24Error(f"{method}: ID cursor stuck at {last} (a full page without a higher ID)")
                chained = _int_id(rows[PAGE - 1])
                last = max(ids)
                if chained != last:  # the next command's cursor was not this page's highest ID
                    break

    def id_pages(self, method: str, flt: dict[str, Any] | None = None) -> Iterator[list[int]]:
        """Every ID of a list, one page (≤ 50 IDs) at a time: the :meth:`id_walk` selecting only
        ``ID`` (2,500 IDs a request). Nothing but the current batch is held, whatever the list's size."""
        for page in self.id_walk(method, {"filter": dict(flt or {}), "select": ["ID"]}):
            yield [i for i in map(_int_id, page.rows) if i is not None]

    def list_ids(self, method: str, flt: dict[str, Any] | None = None) -> set[int]:
        """Every ID of a list as a set (:meth:`id_pages`); it grows with the list — the loader's
        deletion scan streams :meth:`id_pages` into the database instead."""
        return {i for ids in self.id_pages(method, flt) for i in ids}
