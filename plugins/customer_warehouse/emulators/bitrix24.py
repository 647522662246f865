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
time, method, status) and every admitted call in ``app.state.b24.calls`` (method, parameters) —
the latest ``request_log_limit`` (10,000) or so of each, so a long run does not hold them all.
Memory and speed (a 50-command batch must not be the bottleneck; the portal has indexes): each
file is kept as its raw JSON lines (bytes) plus compact arrays — numeric ID, ``DATE_MODIFY`` and
``LAST_UPDATED`` as UTC microseconds (msgspec reads just those; odd lines take the exact
``json.loads`` path) — and the ``order ID ASC`` permutation, rebuilt when the file changes. A list
ordered by ID whose filter is ``>``/``>=``/``<``/``<=`` on ``ID`` and on one of those dates (plus
any other keys, checked per candidate) bisects both indexes: ``start=-1`` stops after one page,
``start``/``next`` paging computes the matches of a filter once and slices them for the following
pages. A page of the ``start=-1`` walk reads a view of the date-range candidates, never a copy of
the rest of them (that made each page cost O(rows left) and a whole walk quadratic; docs/bitrix24.md).
Records an index cannot vouch for (no plain number or timestamp) and every other filter or order go through :func:`_matches` on the parsed record, as before — same answers
(``tests/sources/test_bitrix24_index.py`` compares with a plain implementation). Only the page
returned is parsed.
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import re
import threading
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
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
    if "*" in select and "UF_*" in select:  # every field: the record itself, as the loop below would give
        return row
    keep = {"ID"}
    for name in select:
        if name == "*":
            keep.update(k for k in row if not k.startswith("UF_"))
        elif name == "UF_*":
            keep.update(k for k in row if k.startswith("UF_"))
        else:
            keep.add(name)
    return {k: v for k, v in row.items() if k in keep}


try:  # msgspec (an Airflow dependency) reads only the indexed fields, much faster than json
    import msgspec

    class _Fields(msgspec.Struct):
        ID: Any = None
        DATE_MODIFY: Any = None
        LAST_UPDATED: Any = None

    _decode_fields = msgspec.json.Decoder(_Fields).decode
    _FAST_ERRORS: tuple = (msgspec.DecodeError, msgspec.ValidationError)
except ImportError:  # pragma: no cover - json alone gives the same answers, slower
    _decode_fields = None
    _FAST_ERRORS = ()

#: fields with a per-file index (the ones the client filters on); times as UTC microseconds
_DATE_FIELDS = ("DATE_MODIFY", "LAST_UPDATED")
_ODD_TIME = -(2 ** 63)  # a value that is not a plain timestamp string: checked the exact way
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NOT_DICT = object()


def _parse_line(line: str) -> Any:
    """One JSONL line as the emulator always read it: ``json.loads``, or the line itself."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def _fields(line: str, raw: bytes) -> tuple[Any, Any, Any] | object:
    """``(ID, DATE_MODIFY, LAST_UPDATED)`` of one line, or ``_NOT_DICT``. msgspec when the three
    are plain strings (or absent); otherwise the exact ``json.loads`` path (NaN literals, big
    numbers, not an object, malformed)."""
    if _decode_fields is not None:
        try:
            got = _decode_fields(raw)
        except _FAST_ERRORS:
            got = None
        if got is not None and all(v is None or type(v) is str for v in (got.ID, got.DATE_MODIFY, got.LAST_UPDATED)):
            return got.ID, got.DATE_MODIFY, got.LAST_UPDATED
    row = _parse_line(line)
    if not isinstance(row, dict):
        return _NOT_DICT
    return row.get("ID"), row.get("DATE_MODIFY"), row.get("LAST_UPDATED")


def _clean_number(value: Any) -> float | None:
    """A value every comparison treats as a number (``_compare``), NaN excluded."""
    if isinstance(value, list | dict):
        return None
    n = _number(value)
    return None if n is None or n != n else n


def _clean_time(value: Any) -> int | None:
    """A value every comparison treats as a timestamp: microseconds since the epoch."""
    if not isinstance(value, str) or _number(value) is not None:
        return None
    t = _when(value)
    return None if t is None else (t - _EPOCH) // dt.timedelta(microseconds=1)


class _Table:
    """One version of a JSONL file: the visible records as raw JSON text plus compact indexes.

    ``raw[p]`` is the line (UTF-8 bytes) of visible record ``p`` (file order); records that are not
    JSON objects keep their parsed value in ``odd`` instead. ``ids[p]`` is the numeric ID (NaN when
    not a plain number), ``times[field][p]`` the UTC microseconds (``_ODD_TIME`` when not a plain
    timestamp). ``order`` lists the records in ``order ID ASC`` (the generic path's stable sort);
    ``lo:hi`` of it is the block with numeric IDs and ``keys`` their IDs, for bisecting ``>ID``.
    Only the page a command returns is parsed."""

    def __init__(self, lines: Iterable[str], visible: Callable[[Any, Any], bool]):
        self.raw: list[bytes | None] = []
        self.odd: dict[int, Any] = {}
        self.ids = array("d")
        self.times = {f: array("q") for f in _DATE_FIELDS}
        sort_keys = []
        for line in lines:
            if not line.strip():
                continue
            raw = line.encode("utf-8")
            got = _fields(line, raw)
            if got is _NOT_DICT:
                value = _parse_line(line)
                self.odd[len(self.raw)] = value
                self.raw.append(None)
                self.ids.append(float("nan"))
                for f in _DATE_FIELDS:
                    self.times[f].append(_ODD_TIME)
                sort_keys.append(_sort_key(None))
                continue
            ident, modified, updated = got
            if not visible(modified, updated):
                continue
            self.raw.append(raw)
            n = _clean_number(ident)
            self.ids.append(float("nan") if n is None else n)
            for f, v in zip(_DATE_FIELDS, (modified, updated), strict=True):
                t = _clean_time(v)
                self.times[f].append(_ODD_TIME if t is None else t)
            sort_keys.append(_sort_key(ident))
        keyed = sorted((k, i) for i, k in enumerate(sort_keys))
        self.order = array("l", (i for _, i in keyed))
        self.rank = array("l", bytes(array("l").itemsize * len(self.order)))
        for r, p in enumerate(self.order):
            self.rank[p] = r
        only = [k for k, _ in keyed]
        self.lo = bisect.bisect_left(only, (1, float("-inf"), ""))
        self.hi = bisect.bisect_left(only, (2, float("-inf"), ""))
        self.keys = array("d", (k[1] for k in only[self.lo:self.hi]))
        self._time_index: dict[str, tuple[array, array, list[int]]] = {}
        self._lock = threading.Lock()
        self.cache: dict[Any, Any] = {}  # (filter) → matching positions, for start/next paging

    def __len__(self) -> int:
        return len(self.raw)

    def row(self, p: int) -> Any:
        raw = self.raw[p]
        return self.odd[p] if raw is None else json.loads(raw.decode("utf-8"))

    def rows(self) -> list[Any]:
        return [self.row(p) for p in range(len(self.raw))]

    def time_index(self, name: str) -> tuple[array, array, list[int]]:
        """``(times, positions)`` of the plain timestamps of ``name`` sorted by time, and the ranks
        of the records whose value is not one (checked exactly)."""
        with self._lock:
            if name not in self._time_index:
                col = self.times[name]
                good = sorted((t, p) for p, t in enumerate(col) if t != _ODD_TIME)
                odd = sorted(self.rank[p] for p, t in enumerate(col) if t == _ODD_TIME)
                self._time_index[name] = (array("q", (t for t, _ in good)), array("l", (p for _, p in good)), odd)
            return self._time_index[name]


def _bounds(conds: list[tuple[str, Any]], arr: Any, lo: int, hi: int) -> tuple[int, int]:
    """The slice ``[a, b)`` of the sorted ``arr[lo:hi]`` meeting every ``(op, value)``."""
    a, b = lo, hi
    for op, v in conds:
        if op == ">":
            a = max(a, bisect.bisect_right(arr, v, lo, hi))
        elif op == ">=":
            a = max(a, bisect.bisect_left(arr, v, lo, hi))
        elif op == "<":
            b = min(b, bisect.bisect_left(arr, v, lo, hi))
        else:
            b = min(b, bisect.bisect_right(arr, v, lo, hi))
    return a, max(a, b)


def _plan(flt: dict[str, Any]) -> tuple[list, str | None, list, bool] | None:
    """Split a filter into ``>``/``>=``/``<``/``<=`` conditions on ID (numbers) and on one date
    field (timestamps), and whether anything else is left (checked exactly per candidate). None
    when the indexes cannot answer it (the generic path then does)."""
    id_conds, date_conds, date_field, rest = [], [], None, False
    for key, want in flt.items():
        op = next((o for o in _OPS if key.startswith(o)), "")
        name = key[len(op):]
        if op not in (">", ">=", "<", "<=") or (name != "ID" and name not in _DATE_FIELDS):
            rest = True
            continue
        if name == "ID":
            if isinstance(want, list | dict):  # any of several values: above the smallest / below the largest
                values = list(want.values()) if isinstance(want, dict) else want
                nums = [_clean_number(_php_scalar(v)) for v in values]
                if not nums or None in nums:
                    return None
                want = min(nums) if op in (">", ">=") else max(nums)
            n = _clean_number(want)
            if n is None:
                return None
            id_conds.append((op, n))
        else:
            t = _clean_time(want)
            if t is None or (date_field is not None and date_field != name):
                return None
            date_field = name
            date_conds.append((op, t))
    return id_conds, date_field, date_conds, rest


def _lines(f: Iterable[bytes]) -> Iterator[str]:
    """The file's lines exactly as ``read_text(encoding="utf-8").splitlines()`` gives them (every
    Unicode line break), read one line at a time instead of the whole text at once."""
    for chunk in f:
        yield from chunk.decode("utf-8").splitlines()


class _File:
    """A JSONL file as a :class:`_Table`, rebuilt when it changes on disk."""

    def __init__(self, path: Path, visible: Callable[[Any, Any], bool]):
        self.path = path
        self.visible = visible
        self._sig: tuple[float, int] | None = None
        self.table = _Table((), visible)
        self._lock = threading.Lock()

    def load(self) -> _Table:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                return _Table((), self.visible)
            if (st.st_mtime, st.st_size) != self._sig:
                self.table = None  # type: ignore[assignment]  # let the old version go before reading
                with self.path.open("rb") as f:
                    self.table = _Table(_lines(f), self.visible)
                self._sig = (st.st_mtime, st.st_size)
            return self.table


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
    #: keep about the latest N entries of ``requests`` and ``calls`` (None: all); a batch's entry in
    #: ``calls`` holds its 50 commands, so a long run would otherwise grow with the history it served
    log_limit: int | None = 10_000

    def log(self, entries: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        with self.lock:
            entries.append(entry)
            if self.log_limit is not None and len(entries) > 2 * self.log_limit:
                del entries[:len(entries) - self.log_limit]

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
               bucket_size: float | None = 50, drain_rate: float | None = 2.0, page_size: int = PAGE,
               request_log_limit: int | None = 10_000) -> FastAPI:
    """The emulator app for ``data_dir`` (the demo folder: records in ``data_dir/bitrix24``).

    ``drain_rate=0``/``None`` or ``bucket_size=None``: no request limit (client benchmarks).
    ``request_log_limit``: ``app.state.b24.requests`` and ``.calls`` keep about the latest N
    entries (between N and 2N); ``None`` keeps every one."""
    root = Path(data_dir)
    horizon = _horizon(root, today)
    state = B24State(secret, bucket_size, drain_rate, log_limit=request_log_limit)
    app = FastAPI(title="Bitrix24 REST emulator")
    app.state.b24 = state

    def visible(modified: Any, updated: Any) -> bool:
        if horizon is None:
            return True
        t = _when(modified or updated)
        return t is None or t < horizon

    files = {stem: _File(root / "bitrix24" / f"{stem}.jsonl", visible) for stem in METHODS.values()}
    app.state.b24_files = files  # tests check which indexes warm() built
    # index every file now rather than on its first request (the bench calls this before it
    # starts timing: a real portal has its indexes ready, so their build is not the client's cost),
    # the date indexes too, else built on the first dated request (activities' LAST_UPDATED: ~9 s
    # on the medium data)
    app.state.warm = lambda: [f.load().time_index(name) for f in files.values() for name in _DATE_FIELDS]

    def candidates(tbl: _Table, field_name: str, conds: list) -> array:
        """Ranks (``order ID ASC`` positions) of the records the date conditions may keep: the
        bisected time range plus every record whose value is not a plain timestamp (sorted; a
        compact array, computed once per filter and kept)."""
        key = ("time", field_name, tuple(conds))
        got = tbl.cache.get(key)
        if got is None:
            times, positions, odd = tbl.time_index(field_name)
            a, b = _bounds(conds, times, 0, len(times))
            got = array("l", sorted([tbl.rank[p] for p in positions[a:b]] + odd))
            _remember(tbl.cache, key, got)
        return got

    def matching(tbl: _Table, flt: dict[str, Any], plan: tuple) -> Iterator[int]:
        """Positions of the records meeting ``flt``, in ``order ID ASC``: the ``>ID`` range by
        bisection, the date range from its index; records the indexes cannot vouch for (no plain
        numeric ID or timestamp, other filter keys) are parsed and checked with :func:`_matches`."""
        id_conds, date_field, date_conds, rest = plan
        n, lo, hi = len(tbl), tbl.lo, tbl.hi
        a, b = _bounds(id_conds, tbl.keys, 0, hi - lo)
        a, b = a + lo, b + lo
        # outside the numeric block (no ID, text or timestamp IDs) every candidate is checked exactly
        segments = [(0, lo, True), (a, b, False), (hi, n, True)]
        ranks = candidates(tbl, date_field, date_conds) if date_field else None
        times = tbl.times[date_field] if date_field else None
        for first, last, exact in segments:
            if first >= last:
                continue
            if ranks is None:
                seq: Any = range(first, last)
            else:  # a view, not a copy: a page read from the start of the walk must not cost O(rows left)
                seq = memoryview(ranks)[bisect.bisect_left(ranks, first):bisect.bisect_left(ranks, last)]
            for r in seq:
                p = tbl.order[r]
                if tbl.raw[p] is None:  # not an object: listed whatever the filter (as before)
                    yield p
                elif exact or rest or (times is not None and times[p] == _ODD_TIME) or tbl.ids[p] != tbl.ids[p]:
                    if _matches(tbl.row(p), flt):
                        yield p
                else:
                    yield p

    def run_list(method: str, params: dict[str, Any]) -> dict[str, Any]:
        flt = params.get("filter") or {}
        if not isinstance(flt, dict):
            raise ValueError("filter must be an object")
        order = params.get("order") or {"ID": "ASC"}
        select = params.get("select")
        if isinstance(select, str):
            select = [select]
        start = int(params.get("start", 0) or 0)
        tbl = files[METHODS[method]].load()
        id_asc = isinstance(order, dict) and list(order) == ["ID"] and str(order["ID"]).upper() == "ASC"
        plan = _plan(flt) if id_asc else None
        if plan is not None:
            if start == -1:  # the fast path: no count, no offset — stop after one page
                page = []
                for p in matching(tbl, flt, plan):
                    page.append(p)
                    if len(page) >= page_size:
                        break
                return {"result": [_shape(tbl.row(p), select) for p in page]}
            key = ("all", json.dumps(flt, sort_keys=True, default=str))
            chosen = tbl.cache.get(key)
            if chosen is None:  # start/next paging: the matches once, each page a slice of them
                chosen = array("l", matching(tbl, flt, plan))
                _remember(tbl.cache, key, chosen)
            answer: dict[str, Any] = {"result": [_shape(tbl.row(p), select) for p in chosen[start:start + page_size]],
                                      "total": len(chosen)}
            if start + page_size < len(chosen):
                answer["next"] = start + page_size
            return answer
        # anything else (other orders, filters the indexes cannot answer): every record, parsed
        rows = tbl.rows()
        chosen = [r for r in rows if not isinstance(r, dict) or _matches(r, flt)]
        for name, direction in reversed(list(order.items())):
            chosen.sort(key=lambda r, n=name: _sort_key(r.get(n) if isinstance(r, dict) else None),
                        reverse=str(direction).upper() == "DESC")
        if start == -1:
            return {"result": [_shape(r, select) for r in chosen[:page_size]]}
        page = chosen[start:start + page_size]
        answer = {"result": [_shape(r, select) for r in page], "total": len(chosen)}
        if start + page_size < len(chosen):
            answer["next"] = start + page_size
        return answer

    app.state.b24_list = run_list  # tests compare it with a reference implementation

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
        state.log(state.calls, {"method": method, "params": params})
        try:  # answers are plain JSON already: JSONResponse skips FastAPI's jsonable_encoder walk
            if method == "batch":
                return JSONResponse({"result": run_batch(params), "time": timing(t0)})
            if method not in METHODS:
                return _error(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            return JSONResponse({**run_list(method, params), "time": timing(t0)})
        except (ValueError, TypeError, AttributeError) as exc:
            return _error(400, "INVALID_ARG_VALUE", str(exc))

    faults.install(app)
    app.add_middleware(_RequestLog, state=state)
    return app


def _remember(cache: dict, key: Any, value: Any, limit: int = 64) -> None:
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value


def _sort_key(value: Any) -> tuple:
    """Nothing, then numbers, then timestamps, then other text; NaN sorts as its text (a number
    that equals nothing would leave the order, and bisection on it, undefined)."""
    n = _number(value)
    if n is not None and n == n:
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
            self.state.log(self.state.requests, entry)
