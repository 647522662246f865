"""Bitrix24 REST emulator (incoming webhook): serves ``DIR/bitrix24/*.jsonl`` with the real protocol.

What it reproduces (docs: /work/shared/reference/sources.md, "Bitrix24 — REST"):

* ``/rest/{user_id}/{secret}/{method}[.json]``, parameters as a JSON body, a form body or a PHP-style
  query string (``filter[>ID]=5&order[ID]=ASC&select[]=*``); a wrong secret answers 401
  ``INVALID_CREDENTIALS``; :meth:`B24State.expire` makes every call answer 401 ``expired_token``.
* ``crm.deal.list``, ``crm.contact.list``, ``crm.company.list``, ``crm.activity.list``,
  ``crm.status.list``, ``crm.deal.userfield.list`` with ``filter`` (``>ID``, ``>=DATE_MODIFY``,
  ``=STAGE_ID``, ``!``, ``<``, ``<=``, ``@`` lists…), ``order``, ``select`` (``*`` = standard fields,
  ``UF_*`` = custom fields), 50 rows a call, ``start``/``next``/``total``, and ``start=-1`` (no
  count, no ``next``: the fast ID-cursor path).
* ``batch`` with ``cmd[...]`` (up to 50 commands, each ``method?query``, run in order) answering
  ``result.result / result_error / result_total / result_next / result_time``; ``halt=1`` stops at
  the first failed command. A command's parameters may reference earlier answers —
  ``$result[cmd][49][ID]``, also ``$next[…]``, ``$total[…]``, ``$time[…]``, ``$error[…]`` — substituted
  the way the portal's ``CRestUtil::processBatchElement`` does (docs/bitrix24.md): the path is
  followed while each key exists; at the first missing key the walk **stops and the value reached so
  far is used** (no error). So ``$result[p0][49][ID]`` after a 20-row page becomes the whole page
  (a list), and a list compared with ``>ID`` matches IDs above any element, each element counting as
  PHP's ``intval(array)`` = 1: the command quietly lists from the start again. A client must notice
  the short page itself and drop what later commands returned.
* The leaky bucket: ``bucket_size`` requests (50) draining ``drain_rate`` per second (2); over it
  → 503 ``QUERY_LIMIT_EXCEEDED``. A batch counts as one request, as on a real portal.
  ``drain_rate=0`` (or ``None``) or ``bucket_size=None`` lifts the limit (benchmarks of the client).
  Per-method time limits (429 ``OPERATION_TIME_LIMIT``) are injected with :mod:`.faults`.

Every answer has the ``time`` block. Every request is logged in ``app.state.b24.requests`` (arrival
time, method, status) and every admitted call in ``app.state.b24.calls`` (method, parameters).
Memory: each file is read into memory when first asked for (and again when it changes) —
fine for demo sizes. The rows are kept sorted by ID, so the fast path (``order ID ASC``,
``>ID``, ``start=-1``) starts at a bisected position and stops after one page instead of
filtering and sorting the whole list per command (the portal has an index; the emulator should
not be the bottleneck of a 50-command batch).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import faults

PAGE = 50
BATCH_MAX = 50
#: method → file stem (``DIR/bitrix24/<stem>.jsonl``)
METHODS = {
    "crm.deal.list": "deals",
    "crm.contact.list": "contacts",
    "crm.company.list": "companies",
    "crm.activity.list": "activities",
    "crm.status.list": "deal_stages",
    "crm.deal.userfield.list": "deal_userfields",
}
_OPS = (">=", "<=", "!=", "!@", ">", "<", "=", "!", "@", "%")


def parse_php_query(query: str) -> dict[str, Any]:
    """``a[b][c]=1&s[]=x&s[]=y`` → ``{"a": {"b": {"c": "1"}}, "s": ["x", "y"]}`` (PHP's rules,
    enough for Bitrix24 parameters; numeric-keyed maps become lists)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        _assign(out, key, value)
    return _listify(out)


def _assign(out: dict, key: str, value: Any) -> None:
    head, _, rest = key.partition("[")
    path = [head] + ([p for p in rest.rstrip("]").split("][")] if rest else [])
    node = out
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if part == "":
            part = str(len(node))
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _listify(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
        return None
    try:
        t = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _compare(a: Any, b: Any) -> int | None:
    """Compare a record value with a filter value the way Bitrix24 does for its field types."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return (na > nb) - (na < nb)
    ta, tb = _when(a), _when(b)
    if ta is not None and tb is not None:
        return (ta > tb) - (ta < tb)
    if a is None:
        return None
    sa, sb = str(a), str(b)
    return (sa > sb) - (sa < sb)


def _matches(row: dict, flt: dict[str, Any]) -> bool:
    for key, want in flt.items():
        op = next((o for o in _OPS if key.startswith(o)), "")
        name = key[len(op):]
        have = row.get(name)
        if op in (">", ">=", "<", "<=") and isinstance(want, list | dict):
            # several values for a comparison: any of them (an SQL OR); a non-scalar value — what a
            # ``$result[…]`` reference that stopped short leaves behind — counts as PHP's
            # intval(array): 1 when non-empty (unverified against a portal; docs/bitrix24.md)
            values = list(want.values()) if isinstance(want, dict) else want
            if not any(_matches(row, {key: _php_scalar(v)}) for v in values):
                return False
            continue
        if op in ("@", "!@") or isinstance(want, list):
            values = want if isinstance(want, list) else [want]
            inside = any(_compare(have, v) == 0 for v in values)
            if inside == (op in ("!@", "!", "!=")):
                return False
            continue
        c = _compare(have, want)
        if op == "%":
            if want is None or str(want).lower() not in str(have or "").lower():
                return False
        elif op in ("!", "!="):
            if c == 0:
                return False
        elif c is None:
            return False
        elif (op == ">" and c <= 0) or (op == ">=" and c < 0) or (op == "<" and c >= 0) \
                or (op == "<=" and c > 0) or (op in ("", "=") and c != 0):
            return False
    return True


def _php_scalar(value: Any) -> Any:
    if isinstance(value, dict | list):
        return 1 if value else 0
    return value


# the portal's pattern: ``/\$(result|next|total|time|error)([^\s]*)/i``; the path is the ``[…]`` groups
# inside the match, and the whole match (up to white space) is what gets replaced
_MACRO = re.compile(r"\$(result|next|total|time|error)(\S*)", re.IGNORECASE)
_PATH = re.compile(r"\[([^\]]+)\]")


def _resolve(done: dict[str, dict], root: str, path: str) -> Any:
    """Follow ``[a][b][c]`` into the answers so far; stop at the first key that is not there."""
    node: Any = done[root.lower()]
    for key in _PATH.findall(path):
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            break  # the portal's loop: `if (isset($r[$key])) $r = $r[$key]; else break;`
    return node


def substitute(value: Any, done: dict[str, dict]) -> Any:
    """``$result[cmd][49][ID]`` references in one batch command's parameters, as the portal does."""
    if isinstance(value, dict):
        return {k: substitute(v, done) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, done) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value
    for m in list(_MACRO.finditer(value)):
        if not _PATH.search(m.group(2)):
            continue
        got = _resolve(done, m.group(1), m.group(2))
        if m.group(0) == value:  # the whole parameter is one reference: the value itself, even a list
            return got
        value = value.replace(m.group(0), "Array" if isinstance(got, dict | list) else
                              ("" if got is None else str(got)))
    return value


def _select(row: dict, select: list[str] | None) -> dict:
    if not select:
        select = ["*"]
    keep = {"ID"}
    for name in select:
        if name == "*":
            keep.update(k for k in row if not k.startswith("UF_"))
        elif name == "UF_*":
            keep.update(k for k in row if k.startswith("UF_"))
        else:
            keep.add(name)
    return {k: v for k, v in row.items() if k in keep}


class _File:
    """A JSONL file in memory, reloaded when it changes on disk."""

    def __init__(self, path: Path):
        self.path = path
        self._sig: tuple[float, int] | None = None
        self.rows: list[Any] = []
        self.version = 0
        self._lock = threading.Lock()

    def load(self) -> list[Any]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return []
            if (st.st_mtime, st.st_size) != self._sig:
                rows = []
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except ValueError:
                            rows.append(line)
                self.rows, self._sig = rows, (st.st_mtime, st.st_size)
                self.version += 1
            return self.rows


@dataclass
class B24State:
    secret: str
    bucket_size: float | None
    drain_rate: float | None
    level: float = 0.0
    last: float = field(default_factory=time.monotonic)
    expired: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)  # served calls: method and parameters
    lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self) -> bool:
        """Leaky bucket: True if the request fits, False for QUERY_LIMIT_EXCEEDED."""
        if not self.drain_rate or self.bucket_size is None:
            return True  # limit lifted (benchmarks)
        now = time.monotonic()
        with self.lock:
            self.level = max(0.0, self.level - (now - self.last) * self.drain_rate)
            self.last = now
            if self.level + 1 > self.bucket_size:
                return False
            self.level += 1
            return True

    def expire(self) -> None:
        self.expired = True


def _horizon(data_dir: Path, today: dt.date | None) -> dt.datetime | None:
    if today is None:
        manifest = data_dir / "manifest.json"
        if manifest.exists() and json.loads(manifest.read_text()).get("today"):
            today = dt.date.fromisoformat(json.loads(manifest.read_text())["today"])
    if today is None:
        return None
    from zoneinfo import ZoneInfo

    return dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), ZoneInfo("Europe/Moscow"))


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"error": code, "error_description": description}, status_code=status)


def create_app(data_dir: str | Path, *, today: dt.date | None = None, secret: str = "demo-secret",
               bucket_size: float | None = 50, drain_rate: float | None = 2.0, page_size: int = PAGE) -> FastAPI:
    """The emulator app for ``data_dir`` (the demo folder: records in ``data_dir/bitrix24``).

    ``drain_rate=0``/``None`` or ``bucket_size=None``: no request limit (client benchmarks)."""
    root = Path(data_dir)
    horizon = _horizon(root, today)
    files = {stem: _File(root / "bitrix24" / f"{stem}.jsonl") for stem in METHODS.values()}
    state = B24State(secret, bucket_size, drain_rate)
    app = FastAPI(title="Bitrix24 REST emulator")
    app.state.b24 = state

    def visible(row: Any) -> bool:
        if horizon is None or not isinstance(row, dict):
            return True
        t = _when(row.get("DATE_MODIFY") or row.get("LAST_UPDATED"))
        return t is None or t < horizon

    by_id: dict[str, tuple[int, list[Any], list[tuple]]] = {}
    by_id_lock = threading.Lock()

    def sorted_by_id(stem: str) -> tuple[list[Any], list[tuple]]:
        """The visible rows in ``order ID ASC`` (a stable sort, as the generic path sorts) and their
        sort keys, rebuilt when the file changes."""
        rows = files[stem].load()
        with by_id_lock:
            cached = by_id.get(stem)
            if cached is None or cached[0] != files[stem].version:
                shown = [r for r in rows if visible(r)]
                keyed = sorted(((_sort_key(r.get("ID") if isinstance(r, dict) else None), i)
                                for i, r in enumerate(shown)))
                cached = (files[stem].version, [shown[i] for _, i in keyed], [k for k, _ in keyed])
                by_id[stem] = cached
            return cached[1], cached[2]

    def fast_page(stem: str, flt: dict[str, Any], after: Any) -> list[Any]:
        """``order ID ASC`` + ``>ID after`` + ``start=-1``: bisect to the first numeric ID above
        ``after``; rows without a numeric ID (sorted before and after that block) are still checked
        with the full filter, so the answer is exactly the generic path's."""
        rows, keys = sorted_by_id(stem)
        lo = bisect.bisect_left(keys, (1, float("-inf"), ""))
        hi = bisect.bisect_left(keys, (2, float("-inf"), ""))
        cut = bisect.bisect_right(keys, (1, float(after), "\uffff"), lo, hi)
        out: list[Any] = []
        for part in (rows[:lo], rows[cut:]):
            for r in part:
                if not isinstance(r, dict) or _matches(r, flt):
                    out.append(r)
                    if len(out) >= page_size:
                        return out
        return out

    def run_list(method: str, params: dict[str, Any]) -> dict[str, Any]:
        flt = params.get("filter") or {}
        if not isinstance(flt, dict):
            raise ValueError("filter must be an object")
        order = params.get("order") or {"ID": "ASC"}
        select = params.get("select")
        if isinstance(select, str):
            select = [select]
        start = int(params.get("start", 0) or 0)
        after = flt.get(">ID")
        if isinstance(after, dict):
            after = list(after.values())
        if isinstance(after, list) and after:  # ``>ID`` any of several values = above the smallest
            nums = [_number(_php_scalar(v)) for v in after]
            after = None if None in nums else min(nums)
        after = None if isinstance(after, list | dict) else _number(after)
        id_asc = isinstance(order, dict) and list(order) == ["ID"] and str(order["ID"]).upper() == "ASC"
        if start == -1 and after is not None and id_asc:
            return {"result": [_shape(r, select) for r in fast_page(METHODS[method], flt, after)]}
        rows = [r for r in files[METHODS[method]].load() if visible(r)]
        chosen = [r for r in rows if not isinstance(r, dict) or _matches(r, flt)]
        for name, direction in reversed(list(order.items())):
            chosen.sort(key=lambda r, n=name: _sort_key(r.get(n) if isinstance(r, dict) else None),
                        reverse=str(direction).upper() == "DESC")
        if start == -1:  # the fast path: no count, no offset
            return {"result": [_shape(r, select) for r in chosen[:page_size]]}
        page = chosen[start:start + page_size]
        answer: dict[str, Any] = {"result": [_shape(r, select) for r in page], "total": len(chosen)}
        if start + page_size < len(chosen):
            answer["next"] = start + page_size
        return answer

    def timing(t0: float) -> dict[str, Any]:
        t1 = time.time()
        return {"start": t0, "finish": t1, "duration": t1 - t0, "processing": t1 - t0,
                "date_start": dt.datetime.fromtimestamp(t0, dt.UTC).isoformat(),
                "date_finish": dt.datetime.fromtimestamp(t1, dt.UTC).isoformat(), "operating": 0}

    def run_batch(params: dict[str, Any]) -> dict[str, Any]:
        cmd = params.get("cmd") or {}
        if isinstance(cmd, list):
            cmd = dict(enumerate(cmd))
        if len(cmd) > BATCH_MAX:
            raise ValueError(f"batch takes at most {BATCH_MAX} commands")
        halt = str(params.get("halt", "0")).lower() in ("1", "true", "y")
        # what the portal keeps per command while the batch runs; ``$result[…]``, ``$next[…]``…
        # read from it (CRestProvider::methodsBatch)
        done: dict[str, dict[str, Any]] = {"result": {}, "next": {}, "total": {}, "time": {}, "error": {}}
        for key, line in cmd.items():
            key = str(key)
            method, _, query = str(line).partition("?")
            t0 = time.time()
            if method not in METHODS:
                done["error"][key] = {"error": "ERROR_METHOD_NOT_FOUND", "error_description": method}
                if halt:
                    break
                continue
            try:
                answer = run_list(method, substitute(parse_php_query(query), done))
            except (ValueError, TypeError, AttributeError) as exc:
                done["error"][key] = {"error": "INVALID_ARG_VALUE", "error_description": str(exc)}
                if halt:
                    break
                continue
            done["result"][key] = answer["result"]
            if "total" in answer:
                done["total"][key] = answer["total"]
            if "next" in answer:
                done["next"][key] = answer["next"]
            done["time"][key] = timing(t0)
        out = {"result": done["result"], "result_error": done["error"], "result_total": done["total"],
               "result_next": done["next"], "result_time": done["time"]}
        return {k: (v if v else []) if k != "result" else v for k, v in out.items()}

    @app.api_route("/rest/{user_id}/{key}/{method}", methods=["GET", "POST"])
    async def rest(user_id: str, key: str, method: str, request: Request):
        t0 = time.time()
        method = method.removesuffix(".json")
        if key != state.secret:
            return _error(401, "INVALID_CREDENTIALS", "Invalid request credentials")
        if state.expired:
            return _error(401, "expired_token", "The access token provided has expired.")
        if not state.admit():
            return _error(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
        params = parse_php_query(request.url.query)
        body = await request.body()
        if body:
            if "json" in request.headers.get("content-type", ""):
                try:
                    params.update(json.loads(body))
                except ValueError:
                    return _error(400, "INVALID_REQUEST", "body is not JSON")
            else:
                params.update(parse_php_query(body.decode()))
        with state.lock:
            state.calls.append({"method": method, "params": params})
        try:
            if method == "batch":
                return {"result": run_batch(params), "time": timing(t0)}
            if method not in METHODS:
                return _error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            return {**run_list(method, params), "time": timing(t0)}
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, "INVALID_ARG_VALUE", str(exc))

    faults.install(app)
    app.add_middleware(_RequestLog, state=state)
    return app


def _sort_key(value: Any) -> tuple:
    n = _number(value)
    if n is not None:
        return (1, n, "")
    t = _when(value)
    if t is not None:
        return (2, t.timestamp(), "")
    return (0 if value is None else 3, 0.0, str(value))


def _shape(row: Any, select: list[str] | None) -> Any:
    return _select(row, select) if isinstance(row, dict) else row


class _RequestLog:
    """Outermost ASGI middleware: every request with its arrival time and status."""

    def __init__(self, app, state: B24State):
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            return await self.app(scope, receive, send)
        method = scope["path"].rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")
        entry = {"t": time.time(), "method": method, "path": scope["path"], "status": None}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            with self.state.lock:
                self.state.requests.append(entry)
