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
* A per-second rate limit: more than ``rate_limit`` requests within one second → 429 (with
  ``Retry-After`` only when ``retry_after`` is set: the real API sends none); ``block_after``
  such violations within ``violation_window`` seconds block the account and then **every**
  request answers 403 for ``block_seconds``.
* Every request is logged in ``app.state.amo.requests`` (time, method, path, query, status) so
  tests can count requests per second or see what a client asked for.

Records are served exactly as stored (malformed lines included, so clients' quarantine can be
tested). Memory: each file is indexed once (offset, id, time per record; re-indexed when the file
changes) and only the requested page is read from disk, so large demo files are not held in memory.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from collections import deque
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


@dataclass(slots=True)
class _Entry:
    offset: int
    id: Any
    times: dict[str, float | None]


class JsonlIndex:
    """Offsets of the records of one JSONL file, with the fields lists filter and sort on."""

    FIELDS = ("updated_at", "created_at")

    def __init__(self, path: Path):
        self.path = path
        self._sig: tuple[float, int] | None = None
        self._entries: list[_Entry] = []
        self._lock = threading.Lock()

    def entries(self) -> list[_Entry]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._sig, self._entries = None, []
                return []
            sig = (st.st_mtime, st.st_size)
            if sig != self._sig:
                self._entries = self._build()
                self._sig = sig
            return self._entries

    def _build(self) -> list[_Entry]:
        out = []
        with self.path.open("rb") as fh:
            offset = 0
            for line in fh:
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except ValueError:
                        obj = None
                    rec = obj if isinstance(obj, dict) else {}
                    out.append(_Entry(offset, rec.get("id"), {f: _as_number(rec.get(f)) for f in self.FIELDS}))
                offset += len(line)
        return out

    def read(self, entries: list[_Entry]) -> list[Any]:
        items = []
        with self.path.open("rb") as fh:
            for e in entries:
                fh.seek(e.offset)
                line = fh.readline()
                try:
                    items.append(json.loads(line))
                except ValueError:  # keep the broken line visible to the client as a string
                    items.append(line.decode("utf-8", "replace").rstrip("\n"))
        return items


@dataclass
class AmoState:
    """The emulator's mutable state: tokens, rate-limit window, block, request log."""

    token: str
    client_id: str
    client_secret: str
    refresh_token: str
    access_ttl: float | None
    rate_limit: int
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
               rate_limit: int = 7, block_after: int = 5, block_seconds: float = 60.0,
               violation_window: float = 60.0, retry_after: float | None = None, page_max: int = PAGE_MAX,
               client_id: str = "demo-client", client_secret: str = "demo-secret",
               refresh_token: str = "demo-refresh", access_ttl: float | None = None) -> FastAPI:
    """The emulator app for ``data_dir`` (the demo folder: records in ``data_dir/amocrm``)."""
    root = Path(data_dir)
    folder = root / "amocrm"
    today = today or _today_from_manifest(root)
    # records changed after the end of "today" do not exist yet, whatever the wall clock says
    horizon = None
    if today is not None:
        from zoneinfo import ZoneInfo

        horizon = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), ZoneInfo("Europe/Moscow")).timestamp()
    state = AmoState(token, client_id, client_secret, refresh_token, access_ttl, rate_limit, block_after,
                     block_seconds, violation_window, retry_after)
    indexes: dict[str, JsonlIndex] = {}

    def index(stem: str) -> JsonlIndex:
        if stem not in indexes:
            indexes[stem] = JsonlIndex(folder / f"{stem}.jsonl")
        return indexes[stem]

    app = FastAPI(title="amoCRM v4 emulator")
    app.state.amo = state

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
        chosen = _select(index(stem).entries(), ranges, order, horizon)
        window = chosen[(page - 1) * limit: page * limit]
        if not window:
            return Response(status_code=204)
        href = str(request.url)
        links: dict[str, Any] = {"self": {"href": href}}
        if len(window) == limit:
            links["next"] = {"href": str(request.url.include_query_params(page=page + 1))}
        return {"_page": page, "_links": links, "_embedded": {key: index(stem).read(window)}}

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


def _select(entries: list[_Entry], ranges, order, horizon: float | None) -> list[_Entry]:
    """Filter and order index entries. Records whose time cannot be read pass every filter,
    so malformed records still reach the client (which must quarantine them)."""
    chosen = []
    for e in entries:
        ok = True
        for name, (lo, hi) in ranges.items():
            t = e.times.get(name)
            if t is None:
                continue
            if (lo is not None and t < lo) or (hi is not None and t > hi):
                ok = False
                break
        if ok and horizon is not None:
            t = e.times.get("updated_at") or e.times.get("created_at")
            ok = t is None or t < horizon
        if ok:
            chosen.append(e)
    name, asc = order or ("id", True)

    def sort_key(e: _Entry):
        value = _as_number(e.id) if name == "id" else e.times.get(name)
        return (value if value is not None else float("-inf"), str(e.id))

    chosen.sort(key=sort_key, reverse=not asc)
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
                self.state.requests.append(entry)
