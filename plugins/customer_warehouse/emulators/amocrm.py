"""amoCRM API v4 emulator: serves ``DIR/amocrm/*.jsonl`` with the real protocol around it.

What it reproduces (docs: /work/shared/reference/sources.md, "amoCRM / Kommo — API v4"):

* HAL JSON lists ``{"_page", "_links": {"self", "next"}, "_embedded": {<entity>: [...]}}`` with
  ``page``/``limit`` (``limit`` capped at 250, events at 100); a page past the end, or an empty
  list, is answered **204 No Content**. Like the real API, ``_links.next`` appears whenever the
  page is full, so a list whose size is a multiple of the limit ends on a 204.
* ``filter[<field>][from]`` / ``[to]`` (unix seconds, inclusive), ``order[<field>]=asc|desc``,
  ``with=only_deleted`` on leads (served from ``deleted_leads.jsonl``).
* ``Authorization: Bearer`` tokens: a wrong or expired token gets 401. ``POST /oauth2/access_token``
  (``grant_type=refresh_token``) issues a new access token and a new refresh token and revokes
  the old refresh token (rotation); issued access tokens can expire (``access_ttl``), and tests can
  expire every live token with :meth:`AmoState.expire_access_tokens`.
* A per-second rate limit (``rate_limit=None`` lifts it, for the benchmark): more than
  ``rate_limit`` requests within one second → 429 (with
  ``Retry-After`` only when ``retry_after`` is set: the real API sends none); ``block_after``
  such violations within ``violation_window`` seconds block the account and then **every**
  request answers 403 for ``block_seconds``.
* Every request is logged in ``app.state.amo.requests`` (time, method, path, query, status) so
  tests can count requests per second or see what a client asked for.

Records are served exactly as stored (malformed lines included, as JSON strings, so clients'
quarantine can be tested). Memory and time: each file is indexed once, column-wise (offset, id and
times per record as machine numbers; re-indexed when the file changes), only the requested page is
read from disk, and a list filtered by the field it is ordered by (how clients walk a history) is
cut out of a cached sorted order by bisection — a page costs O(log n + page), not a scan. A sorted
order is built with numpy (one ``lexsort``, not a Python key per record: a new ``today`` needs new
orders), and the indexes are kept per process (:func:`shared_index`), so an emulator started again
on the same files — the next simulated day — answers its first window query without re-reading them.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import secrets
import threading
import time
from array import array
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from . import faults

PAGE_MAX = 250
EVENTS_PAGE_MAX = 100
#: list endpoints with an entity of their own: path → (file stem, embedded key)
_LISTS = {
    "leads": ("leads", "leads"),
    "contacts": ("contacts", "contacts"),
    "companies": ("companies", "companies"),
    "tasks": ("tasks", "tasks"),
    "events": ("events", "events"),
    "users": ("users", "users"),
    "leads/pipelines": ("pipelines", "pipelines"),
    "leads/loss_reasons": ("loss_reasons", "loss_reasons"),
}
_PER_ENTITY_TYPE = {"notes": "notes", "custom_fields": "custom_fields"}


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


try:  # msgspec (an Airflow dependency) reads only the three indexed fields, ~10x faster than json
    import msgspec

    class _Fields(msgspec.Struct):
        id: Any = None
        updated_at: Any = None
        created_at: Any = None

    _decode_fields = msgspec.json.Decoder(_Fields).decode
except ImportError:  # pragma: no cover - json alone gives the same answers, slower
    _decode_fields = None

try:  # numpy (a pandas dependency) sorts an order in C instead of with a Python key per record
    import numpy as np
except ImportError:  # pragma: no cover - the pure-Python path gives the same answers, slower
    np = None


def _fast_fields(line: bytes) -> dict[str, Any] | None:
    """``{id, updated_at, created_at}`` of a line that is a JSON object in plain UTF-8 (no BOM),
    or None when the line needs the exact path (``json.loads``: malformed, not an object, NaN
    literals, a BOM, invalid UTF-8 — which msgspec would accept inside strings and json refuses)."""
    if _decode_fields is None:
        return None
    try:
        got = _decode_fields(line)
        if not line.isascii():
            line.decode("utf-8")
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return None
    return {"id": got.id, "updated_at": got.updated_at, "created_at": got.created_at}


_MISSING = float("nan")  # a record without a readable time, in the index's number columns


class _Columns:
    """One file's index, column-wise: offset and filter times of every record as machine numbers,
    and for the id only what ordering needs — its number (``order[id]``) and the rank of its text
    (every order's tie-break) — ~40 bytes a record, whatever the ids are (amoCRM event ids are
    strings). Sorted orders are built lazily, so a page of a filtered list costs O(log n + page),
    not a scan of the whole file.

    Times that are missing or unreadable are NaN in the columns; non-finite times that a record
    really holds (``"inf"``, ``"nan"`` strings parse as such) are kept aside in ``odd_times`` and
    make queries on that field take the exact, scanning path.
    """

    def __init__(self, fields: tuple[str, ...]):
        self.fields = fields
        self.offsets = array("q")
        self.id_number = array("d")  # the id as a number; -inf when it has none (as the order treats it)
        self.id_rank = array("q")  # rank of str(id) among all ids (equal texts, equal ranks)
        self.times = {f: array("d") for f in fields}
        self.odd_times: dict[str, dict[int, float]] = {f: {} for f in fields}
        self._orders: dict[tuple, tuple[array, array, int]] = {}
        self._sortable: dict[str, bool] = {}
        self.slow: set[int] = set()  # positions whose line needs the exact path (json.loads) to be served
        self._ids: list[str] | None = []  # str(id) while building; dropped by finish()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.offsets)

    def add(self, offset: int, rec: dict[str, Any]) -> None:
        i = len(self.offsets)
        self.offsets.append(offset)
        rid = rec.get("id")
        number = _as_number(rid)
        self.id_number.append(float("-inf") if number is None else number)
        self._ids.append(str(rid))
        for f in self.fields:
            t = _as_number(rec.get(f))
            if t is not None and not math.isfinite(t):
                self.odd_times[f][i] = t
                t = None
            self.times[f].append(_MISSING if t is None else t)

    def finish(self) -> _Columns:
        """Rank the ids' texts and drop them."""
        ids, self._ids = self._ids, None
        rank = array("q", bytes(8 * len(ids)))
        previous, r = None, -1
        for i in sorted(range(len(ids)), key=ids.__getitem__):
            if ids[i] != previous:
                previous, r = ids[i], r + 1
            rank[i] = r
        self.id_rank = rank
        return self

    def time(self, i: int, name: str) -> float | None:
        column = self.times.get(name)
        if column is None:
            return None
        odd = self.odd_times[name]
        if odd and i in odd:
            return odd[i]
        t = column[i]
        return None if t != t else t

    def visible(self, i: int, horizon: float | None) -> bool:
        if horizon is None:
            return True
        t = self.time(i, "updated_at") or self.time(i, "created_at")
        return t is None or t < horizon

    def sort_key(self, name: str):
        """The order of a list: (the field's value, or -inf without one; then the id's text)."""
        rank, number = self.id_rank, self.id_number
        if name == "id":
            return lambda i: (number[i], rank[i])
        if name not in self.times:
            return lambda i: (float("-inf"), rank[i])

        def key(i: int):
            value = self.time(i, name)
            return (value if value is not None else float("-inf"), rank[i])
        return key

    def exact_sortable(self, name: str) -> bool:
        """True when the sort key is a total order (no NaN), so sorting before or after filtering
        gives the same sequence."""
        if name not in self._sortable:
            if name == "id":
                self._sortable[name] = not any(v != v for v in self.id_number)
            else:
                self._sortable[name] = not any(t != t for t in self.odd_times.get(name, {}).values())
        return self._sortable[name]

    def ordered(self, name: str, asc: bool, horizon: float | None) -> tuple[array, array, int]:
        """Visible positions sorted as a list request orders them, the order field's values of
        the positions that have one (negated when descending, so they ascend), and how many
        positions have none (first when ascending, last when descending)."""
        key = (name, asc, horizon)
        with self._lock:
            if key not in self._orders:
                build = self._ordered_np if np is not None else self._ordered_py
                while len(self._orders) >= self.ORDERS_KEPT:  # a long-lived index sees a new horizon daily
                    del self._orders[next(iter(self._orders))]
                self._orders[key] = build(name, asc, horizon)
            return self._orders[key]

    ORDERS_KEPT = 8

    def _ordered_py(self, name: str, asc: bool, horizon: float | None) -> tuple[array, array, int]:
        positions = [i for i in range(len(self)) if self.visible(i, horizon)]
        positions.sort(key=self.sort_key(name), reverse=not asc)
        values = array("d")
        blank = 0
        if name in self.times:
            for i in positions:
                t = self.time(i, name)
                if t is None:
                    blank += 1
                else:
                    values.append(t if asc else -t)
        return array("q", positions), values, blank

    def _time_np(self, name: str):
        """(has a time, the time) of every record as numpy arrays, odd times included."""
        value = np.frombuffer(self.times[name], dtype=np.float64).copy()
        has = ~np.isnan(value)
        for i, t in self.odd_times[name].items():
            value[i], has[i] = t, True
        return has, value

    def _ordered_np(self, name: str, asc: bool, horizon: float | None) -> tuple[array, array, int]:
        """:meth:`_ordered_py` in numpy: the same positions, values and blank count."""
        n = len(self)
        if horizon is None:
            positions = np.arange(n, dtype=np.int64)
        else:  # visible(): updated_at, or created_at when it has none (or it is 0)
            u_has, u = self._time_np("updated_at")
            c_has, c = self._time_np("created_at")
            use_u = u_has & (u != 0)
            t_has = np.where(use_u, True, c_has)
            with np.errstate(invalid="ignore"):
                seen = np.where(use_u, u, c) < horizon
            positions = np.flatnonzero(~t_has | seen).astype(np.int64)
        rank = np.frombuffer(self.id_rank, dtype=np.int64)[positions]
        has = None
        if name == "id":
            value = np.frombuffer(self.id_number, dtype=np.float64)[positions]
        elif name in self.times:
            t_has, t = self._time_np(name)
            has, value = t_has[positions], np.where(t_has, t, -np.inf)[positions]
        else:
            value = np.full(len(positions), -np.inf)
        # stable sorts keep equal keys in file order, as list.sort(reverse=True) does
        order = np.lexsort((rank, value)) if asc else np.lexsort((-rank, -value))
        positions = positions[order]
        values = array("d")
        blank = 0
        if has is not None:
            has, value = has[order], value[order]
            blank = int(np.count_nonzero(~has))
            values.frombytes((value[has] if asc else -value[has]).tobytes())
        return array("q", positions.tobytes()), values, blank


class JsonlIndex:
    """Offsets of the records of one JSONL file, with the fields lists filter and sort on."""

    FIELDS = ("updated_at", "created_at")

    def __init__(self, path: Path):
        self.path = path
        self._sig: tuple[float, int] | None = None
        self._columns = _Columns(self.FIELDS).finish()
        self._lock = threading.Lock()

    def entries(self) -> _Columns:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._sig, self._columns = None, _Columns(self.FIELDS).finish()
                return self._columns
            sig = (st.st_mtime_ns, st.st_size, st.st_ino)
            if sig != self._sig:
                self._columns = self._build()
                self._sig = sig
            return self._columns

    def _build(self) -> _Columns:
        out = _Columns(self.FIELDS)
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                if line.strip():
                    rec = _fast_fields(line)
                    if rec is None:  # not plain UTF-8 JSON with an object: the exact, slow path
                        out.slow.add(len(out))
                        try:
                            obj = json.loads(line)
                        except ValueError:
                            obj = None
                        rec = obj if isinstance(obj, dict) else {}
                    out.add(offset, rec)
                offset += len(line)
        return out.finish()

    def read(self, cols: _Columns, positions: list[int]) -> list[bytes]:
        """The records at ``positions`` as JSON texts: a valid line as stored, a broken line as a
        JSON string (kept visible to the client, which must quarantine it)."""
        items = []
        with self.path.open("rb") as fh:
            for i in positions:
                fh.seek(cols.offsets[i])
                line = fh.readline()
                if i not in cols.slow:  # validated when indexed: valid UTF-8 JSON, an object
                    items.append(line.strip())
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    items.append(_as_string(line))
                    continue
                try:
                    text = line.decode("utf-8").strip()
                    items.append(text.encode("utf-8") if not text.startswith("\ufeff")
                                 else json.dumps(obj, ensure_ascii=False).encode("utf-8"))
                except UnicodeDecodeError:  # valid JSON in UTF-16/32: re-encoded
                    items.append(json.dumps(obj, ensure_ascii=False).encode("utf-8"))
        return items


#: every index this process built, by file: an emulator started again on the same files (the bench
#: starts one for the full run, then one for the next day) reuses them instead of reading every
#: file again — a file that changed is re-indexed on its next request all the same
_INDEXES: OrderedDict[Path, JsonlIndex] = OrderedDict()
_INDEXES_KEPT = 64
_INDEXES_LOCK = threading.Lock()


def shared_index(path: Path) -> JsonlIndex:
    """The process's index of ``path`` (the most recently used ``_INDEXES_KEPT`` files are kept)."""
    path = Path(path).absolute()
    with _INDEXES_LOCK:
        idx = _INDEXES.get(path)
        if idx is None:
            idx = _INDEXES[path] = JsonlIndex(path)
            while len(_INDEXES) > _INDEXES_KEPT:
                _INDEXES.popitem(last=False)
        else:
            _INDEXES.move_to_end(path)
        return idx


def _as_string(line: bytes) -> bytes:
    return json.dumps(line.decode("utf-8", "replace").rstrip("\n"), ensure_ascii=False).encode("utf-8")


@dataclass
class AmoState:
    """The emulator's mutable state: tokens, rate-limit window, block, request log."""

    token: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_ttl: float | None
    rate_limit: int | None
    block_after: int
    block_seconds: float
    violation_window: float
    retry_after: float | None
    access_tokens: dict[str, float | None] = field(default_factory=dict)  # token → expiry (monotonic)
    refresh_tokens: set[str] = field(default_factory=set)
    recent: deque = field(default_factory=deque)
    violations: deque = field(default_factory=deque)
    blocked_until: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    request_log_limit: int | None = None
    refreshes: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        self.access_tokens[self.token] = None
        self.refresh_tokens.add(self.refresh_token)

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far invalid (as if a day had passed)."""
        with self.lock:
            for tok in self.access_tokens:
                self.access_tokens[tok] = 0.0

    def token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        expiry = self.access_tokens.get(header[7:].strip(), -1.0)
        return expiry is None or (expiry != -1.0 and time.monotonic() < expiry)

    def admit(self) -> int | None:
        """Rate-limit bookkeeping for one API request: None to serve it, or 429/403."""
        if self.rate_limit is None:  # quotas lifted (benchmark): no window, no block
            return None
        now = time.monotonic()
        with self.lock:
            if now < self.blocked_until:
                return 403
            while self.recent and now - self.recent[0] >= 1.0:
                self.recent.popleft()
            if len(self.recent) >= self.rate_limit:
                self.violations.append(now)
                while self.violations and now - self.violations[0] > self.violation_window:
                    self.violations.popleft()
                if len(self.violations) >= self.block_after:
                    self.blocked_until = now + self.block_seconds
                    self.violations.clear()
                return 429
            self.recent.append(now)
            return None

    def rotate(self, refresh_token: str) -> dict[str, Any] | None:
        with self.lock:
            if refresh_token not in self.refresh_tokens:
                return None
            self.refresh_tokens.discard(refresh_token)
            access, refresh = f"acc-{secrets.token_hex(8)}", f"ref-{secrets.token_hex(8)}"
            self.access_tokens[access] = time.monotonic() + self.access_ttl if self.access_ttl else None
            self.refresh_tokens.add(refresh)
            self.refreshes.append({"used": refresh_token, "issued": refresh})
            return {"token_type": "Bearer", "expires_in": int(self.access_ttl or 86400),
                    "access_token": access, "refresh_token": refresh}


def _today_from_manifest(data_dir: Path) -> dt.date | None:
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        today = json.loads(manifest.read_text()).get("today")
        return dt.date.fromisoformat(today) if today else None
    return None


def _filters(params) -> tuple[dict[str, tuple[float | None, float | None]], tuple[str, bool] | None]:
    """``filter[f][from|to]`` ranges and the ``order[f]`` of a list request."""
    ranges: dict[str, list[float | None]] = {}
    order = None
    for key, value in params.multi_items():
        if key.startswith("filter[") and key.endswith("]"):
            parts = key[len("filter["):-1].split("][")
            name = parts[0]
            bound = parts[1] if len(parts) > 1 else "eq"
            num = _as_number(value)
            lo_hi = ranges.setdefault(name, [None, None])
            if bound in ("from", "eq"):
                lo_hi[0] = num
            if bound in ("to", "eq"):
                lo_hi[1] = num
        elif key.startswith("order[") and key.endswith("]"):
            order = (key[len("order["):-1], value.lower() != "desc")
    return {k: (v[0], v[1]) for k, v in ranges.items()}, order


def _problem(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "type": "https://httpstatus.es/" + str(status), "status": status,
                         "detail": detail}, status_code=status)


def create_app(data_dir: str | Path, *, today: dt.date | None = None, token: str = "demo-token",
               rate_limit: int | None = 7, block_after: int = 5, block_seconds: float = 60.0,
               violation_window: float = 60.0, retry_after: float | None = None, page_max: int = PAGE_MAX,
               client_id: str = "demo-client", client_secret: str = "demo-secret",
               refresh_token: str = "demo-refresh", access_ttl: float | None = None,
               request_log_limit: int | None = None) -> FastAPI:
    """The emulator app for ``data_dir`` (the demo folder: records in ``data_dir/amocrm``).

    ``rate_limit=None`` lifts the rate limit and the account block (the benchmark measures our
    code, not the quota); ``request_log_limit`` keeps only about the latest N entries of
    ``app.state.amo.requests`` (a long run would otherwise hold every request in memory)."""
    root = Path(data_dir)
    folder = root / "amocrm"
    today = today or _today_from_manifest(root)
    # records changed after the end of "today" do not exist yet, whatever the wall clock says
    horizon = None
    if today is not None:
        from zoneinfo import ZoneInfo

        horizon = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), ZoneInfo("Europe/Moscow")).timestamp()
    state = AmoState(token, client_id, client_secret, refresh_token, access_ttl, rate_limit, block_after,
                     block_seconds, violation_window, retry_after, request_log_limit=request_log_limit)
    def index(stem: str) -> JsonlIndex:
        return shared_index(folder / f"{stem}.jsonl")

    app = FastAPI(title="amoCRM v4 emulator")
    app.state.amo = state
    # index every file now rather than on its first request (the bench calls this before it starts
    # timing, as for the other emulators: the account's own storage is not the client's cost)
    app.state.warm = lambda: [shared_index(path).entries() for path in sorted(folder.glob("*.jsonl"))]

    @app.post("/oauth2/access_token")
    async def access_token(request: Request):
        ctype = request.headers.get("content-type", "")
        body = await request.json() if "json" in ctype else dict(await request.form())
        if body.get("client_id") != state.client_id or body.get("client_secret") != state.client_secret:
            return _problem(401, "Unauthorized", "Client authentication failed")
        if body.get("grant_type") != "refresh_token":
            return _problem(400, "Bad Request", "Only grant_type=refresh_token is emulated")
        issued = state.rotate(str(body.get("refresh_token", "")))
        if issued is None:
            return _problem(400, "Bad Request", "Token has been revoked")
        return issued

    @app.get("/api/v4/{path:path}")
    def api_list(path: str, request: Request):
        if not state.token_ok(request.headers.get("authorization")):
            return _problem(401, "Unauthorized", "Invalid or expired access token")
        resolved = _resolve(path.strip("/"), request.query_params.get("with", ""))
        if resolved is None:
            return _problem(404, "Not Found", f"no such list: /api/v4/{path}")
        stem, key = resolved
        cap = min(page_max, EVENTS_PAGE_MAX if key == "events" else PAGE_MAX)
        try:
            page = int(request.query_params.get("page", "1"))
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            return _problem(400, "Bad Request", "page and limit must be integers")
        if page < 1 or limit < 1:
            return _problem(400, "Bad Request", "page and limit must be positive")
        limit = min(limit, cap)
        ranges, order = _filters(request.query_params)
        idx = index(stem)
        cols = idx.entries()
        window = _select(cols, ranges, order, horizon, (page - 1) * limit, page * limit)
        if not window:
            return Response(status_code=204)
        href = str(request.url)
        links: dict[str, Any] = {"self": {"href": href}}
        if len(window) == limit:
            links["next"] = {"href": str(request.url.include_query_params(page=page + 1))}
        head = json.dumps({"_page": page, "_links": links}, ensure_ascii=False)[:-1].encode("utf-8")
        items = idx.read(cols, window)
        body = b"".join((head, b',"_embedded":{', json.dumps(key).encode(), b":[", b",".join(items), b"]}}"))
        return Response(body, media_type="application/json")

    app.add_middleware(_RateGate, state=state)
    faults.install(app)
    app.add_middleware(_RequestLog, state=state)
    return app


def _resolve(path: str, with_: str) -> tuple[str, str] | None:
    if path == "leads" and "only_deleted" in with_.split(","):
        return "deleted_leads", "leads"
    if path in _LISTS:
        return _LISTS[path]
    parts = path.split("/")
    if len(parts) == 2 and parts[1] in _PER_ENTITY_TYPE and parts[0] in ("leads", "contacts", "companies",
                                                                       "customers"):
        return f"{parts[1]}_{parts[0]}", _PER_ENTITY_TYPE[parts[1]]
    return None


def _select(cols: _Columns, ranges, order, horizon: float | None, start: int, stop: int) -> list[int]:
    """Positions ``start:stop`` of the filtered, ordered list. Records whose time cannot be read
    pass every filter, so malformed records still reach the client (which must quarantine them).

    The usual requests — no time filter, or one on the field the list is ordered by — are cut out
    of a cached sorted order by bisection; anything else is filtered by a scan."""
    name, asc = order or ("id", True)
    ranges = {f: r for f, r in ranges.items() if f in cols.times}  # other fields filter nothing
    fast = cols.exact_sortable(name) and (not ranges or (list(ranges) == [name] and not cols.odd_times[name]))
    if not fast:
        return _select_scan(cols, ranges, name, asc, horizon)[start:stop]
    positions, values, blank = cols.ordered(name, asc, horizon)
    if not ranges:
        return positions[start:stop].tolist()
    lo, hi = ranges[name]
    if asc:
        a = 0 if lo is None else bisect.bisect_left(values, lo)
        b = len(values) if hi is None else bisect.bisect_right(values, hi)
        segments = [(0, blank), (blank + a, blank + b)]
    else:
        a = 0 if hi is None else bisect.bisect_left(values, -hi)
        b = len(values) if lo is None else bisect.bisect_right(values, -lo)
        segments = [(a, b), (len(values), len(values) + blank)]
    out: list[int] = []
    skip, want = start, stop - start
    for first, last in segments:
        size = max(0, last - first)
        if skip >= size:
            skip -= size
            continue
        take = positions[first + skip: min(last, first + skip + want - len(out))]
        out.extend(take)
        skip = 0
        if len(out) >= want:
            break
    return out


def _select_scan(cols: _Columns, ranges, name: str, asc: bool, horizon: float | None) -> list[int]:
    chosen = []
    for i in range(len(cols)):
        ok = True
        for field_name, (lo, hi) in ranges.items():
            t = cols.time(i, field_name)
            if t is None:
                continue
            if (lo is not None and t < lo) or (hi is not None and t > hi):
                ok = False
                break
        if ok and cols.visible(i, horizon):
            chosen.append(i)
    chosen.sort(key=cols.sort_key(name), reverse=not asc)
    return chosen


class _RateGate:
    """Rate limit and account block, decided on the event loop as a request arrives: the handler
    runs in a thread pool whose delays would otherwise blur the per-second count."""

    def __init__(self, app, state: AmoState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/api/v4/"):
            return await self.app(scope, receive, send)
        admitted = self.state.admit()
        if admitted is None:
            return await self.app(scope, receive, send)
        if admitted == 403:
            response = _problem(403, "Forbidden", "Account is blocked for exceeding the request rate limit")
        else:
            headers = {"Retry-After": str(self.state.retry_after)} if self.state.retry_after is not None else {}
            response = JSONResponse({"title": "Too Many Requests", "status": 429}, status_code=429, headers=headers)
        await response(scope, receive, send)


class _RequestLog:
    """Outermost ASGI middleware: logs every request with the status it got (faults included)."""

    def __init__(self, app, state: AmoState):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            return await self.app(scope, receive, send)
        entry = {"t": time.time(), "method": scope["method"], "path": scope["path"],
                 "query": scope.get("query_string", b"").decode(), "status": None}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            with self.state.lock:
                log = self.state.requests
                log.append(entry)
                limit = self.state.request_log_limit
                if limit is not None and len(log) > 2 * limit:
                    del log[:len(log) - limit]
