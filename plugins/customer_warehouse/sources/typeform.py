"""Typeform Responses API → ``raw_surveys.responses`` (channel ``typeform``).

``GET {base}/forms/{form_id}/responses`` with ``Authorization: Bearer <token>``, at most 1000
items a page, ``since``/``until`` (inclusive) on the submission time, and the response-token
cursor ``before`` (exclusive; it cannot be combined with ``sort``). Items come newest first, so
the client pages backwards: each next page asks for responses ``before`` the last token seen.

Incremental: the newest ``submitted_at`` landed is kept in ``raw_meta.extract_state``; the next
run asks ``since`` that mark minus a lookback (late submissions, clock skew), and the upsert by
response token makes the overlap harmless. The first run (or ``window.full``) starts at
``extra.start_date`` (or the beginning). The mark moves in the batch's own transaction.

Connection ``typeform_default``: host = API base (``https://api.typeform.com``), password = the
personal token, extra ``forms`` (the units), ``mapping_dir`` (``<form_id>.mapping.yml`` files
with ``fields: {<field ref or id>: <meaning>}`` and ``hidden: {<name>: <meaning>}``),
``start_date``, ``lookback_hours`` (48), ``page_size`` (1000), ``min_interval_seconds`` (0.5,
i.e. ~2 requests a second), ``backoff_seconds`` (1).

Rows land with ``form_id`` = the Typeform form id (the unit) whatever the mapping's ``form_id``
says, so raw keys stay the source's own. :class:`ApiClient` (throttle + retries on 429/5xx/broken
bodies), the incremental window and :func:`land_pages` are shared with Yandex Forms.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from ..loading import BatchResult, RawBatch, get_state, set_state
from . import Window
from .parsing import format_timestamp, parse_datetime
from .survey_files import AnswerTyper, Response, SurveyMapping, land_responses, load_mapping, responses_table

log = logging.getLogger(__name__)

SOURCE = "typeform"
MAX_PAGE_SIZE = 1000
RETRY_STATUSES = {429, 500, 502, 503, 504}


class ApiError(RuntimeError):
    """The API refused a request for good (4xx other than 429, or retries exhausted)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class ApiClient:
    """HTTP with a minimum interval between requests and retries that honour ``Retry-After``.

    Retried: 429, 5xx, dropped connections, and bodies that are not complete JSON (a truncated
    answer). ``sleep`` and ``clock`` are injectable so tests can check the pacing without waiting.
    """

    def __init__(self, base_url: str, headers: dict[str, str], *, min_interval: float = 0.5,
                 max_retries: int = 6, backoff: float = 1.0, timeout: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic):
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(headers=headers, timeout=timeout)
        self.min_interval, self.max_retries, self.backoff = min_interval, max_retries, backoff
        self.sleep, self.clock = sleep, clock
        self._last: float | None = None
        self.requests = 0
        self.retries = 0

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else f"{self.base_url}/{path_or_url.lstrip('/')}"

    def json(self, method: str, path_or_url: str, *, params: dict | None = None, body: Any = None) -> Any:
        """Send one request (with retries) and return its JSON body."""
        url = self.url(path_or_url)
        for attempt in range(self.max_retries + 1):
            self._pace()
            wait = None
            try:
                response = self.http.request(method, url, params=params, json=body)
            except httpx.TransportError as exc:
                wait, why = self._backoff(attempt), f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code in RETRY_STATUSES:
                    wait = _retry_after(response) or self._backoff(attempt)
                    why = f"HTTP {response.status_code}"
                elif response.status_code >= 400:
                    raise ApiError(f"{method} {url} → HTTP {response.status_code}: {response.text[:500]}",
                                   response.status_code)
                else:
                    try:
                        return response.json()
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        wait, why = self._backoff(attempt), f"incomplete JSON body: {exc}"
            if attempt == self.max_retries:
                raise ApiError(f"{method} {url}: giving up after {attempt + 1} tries ({why})")
            self.retries += 1
            log.warning("%s %s: %s; retrying in %.2fs", method, url, why, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pace(self) -> None:
        now = self.clock()
        if self._last is not None and now - self._last < self.min_interval:
            self.sleep(self.min_interval - (now - self._last))
        self._last = self.clock()
        self.requests += 1

    def _backoff(self, attempt: int) -> float:
        return min(self.backoff * 2**attempt, 60.0)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


# -- the Typeform client ------------------------------------------------------------------------
class TypeformClient:
    def __init__(self, api: ApiClient, page_size: int = MAX_PAGE_SIZE):
        self.api = api
        self.page_size = min(page_size, MAX_PAGE_SIZE)

    @classmethod
    def from_config(cls, cfg, **kwargs) -> TypeformClient:
        extra = cfg.extra
        api = ApiClient(cfg.base_url or "https://api.typeform.com", {"Authorization": f"Bearer {cfg.password}"},
                        min_interval=float(extra.get("min_interval_seconds", 0.5)),
                        backoff=float(extra.get("backoff_seconds", 1.0)), **kwargs)
        return cls(api, int(extra.get("page_size", MAX_PAGE_SIZE)))

    def pages(self, form_id: str, since: dt.datetime | None, until: dt.datetime | None) -> Iterator[list[dict]]:
        """Pages of response items, newest first, walking back with the ``before`` cursor."""
        params: dict[str, Any] = {"page_size": self.page_size}
        if since:
            params["since"] = format_timestamp(since)
        if until:
            params["until"] = format_timestamp(until)
        while True:
            body = self.api.json("GET", f"/forms/{form_id}/responses", params=params)
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise ApiError(f"/forms/{form_id}/responses: no 'items' list in the answer")
            if items:
                yield items
            last = next((i.get("token") for i in reversed(items) if isinstance(i, dict) and i.get("token")), None)
            if len(items) < self.page_size or last is None:
                return
            params["before"] = last


# -- mapping items ------------------------------------------------------------------------------
def answer_value(answer: dict) -> Any:
    """The value of one Typeform answer, by its ``type``."""
    kind = answer.get("type")
    value = answer.get(kind) if kind else None
    if kind == "choice" and isinstance(value, dict):
        return value.get("label") or value.get("other")
    if kind == "choices" and isinstance(value, dict):
        return [*(value.get("labels") or []), *([value["other"]] if value.get("other") else [])]
    if kind == "payment" and isinstance(value, dict):
        return value.get("amount")
    return value


def item_to_response(item: Any, mapping: SurveyMapping, typer: AnswerTyper) -> Response:
    """A Typeform item as a mapped response; ValueError (the quarantine reason) when malformed."""
    if not isinstance(item, dict):
        raise ValueError("malformed item: not an object")
    token = item.get("token") or item.get("response_id")
    if not token:
        raise ValueError("malformed item: no token")
    try:
        submitted = parse_datetime(item.get("submitted_at"), "UTC")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed item: submitted_at {exc}") from None
    if submitted is None:
        raise ValueError("malformed item: no submitted_at (a partial response)")
    answers = item.get("answers") or []
    hidden = item.get("hidden") or {}
    if not isinstance(answers, list) or not isinstance(hidden, dict):
        raise ValueError("malformed item: answers must be a list and hidden an object")
    raw: dict[str, Any] = {}
    for answer in answers:
        if not isinstance(answer, dict) or not isinstance(answer.get("field"), dict):
            raise ValueError("malformed item: an answer without a field")
        fld = answer["field"]
        meaning = mapping.fields.get(str(fld.get("ref"))) or mapping.fields.get(str(fld.get("id")))
        if meaning:
            _merge(raw, meaning, answer_value(answer))
    for name, meaning in mapping.hidden.items():
        if hidden.get(name) not in (None, ""):
            _merge(raw, meaning, hidden[name])
    typed, respondent = typer.type_answers(raw)
    return Response(str(token), submitted, typed, respondent, item)


def _merge(raw: dict[str, Any], meaning: str, value: Any) -> None:
    """Two questions with one meaning: lists are joined, otherwise the first answer stays."""
    if meaning not in raw or raw[meaning] in (None, "", []):
        raw[meaning] = value
    elif isinstance(raw[meaning], list):
        raw[meaning] = raw[meaning] + (value if isinstance(value, list) else [value])


# -- incremental window (shared with Yandex Forms) ----------------------------------------------
HWM_KEY = "submitted_at_hwm"


def incremental_interval(conn, source: str, unit: str, cfg, window: Window) -> tuple[dt.datetime | None, dt.datetime]:
    """``(since, until)`` for this run: from the saved mark minus the lookback, or the start date."""
    until = window.end - dt.timedelta(seconds=1)  # the APIs' until is inclusive; window.end is not
    start_date = cfg.extra.get("start_date")
    first = parse_datetime(str(start_date), window.tz) if start_date else None
    mark = None if window.full else get_state(conn, source, unit, HWM_KEY)
    if not mark:
        return first, until
    lookback = dt.timedelta(hours=float(cfg.extra.get("lookback_hours", 48)))
    since = min(dt.datetime.fromisoformat(mark) - lookback, window.start)
    return (max(since, first) if first else since), until


def advance_mark(conn, source: str, unit: str, newest: dt.datetime | None) -> None:
    if newest is None:
        return
    mark = get_state(conn, source, unit, HWM_KEY)
    if not mark or dt.datetime.fromisoformat(mark) < newest:
        set_state(conn, source, unit, HWM_KEY, newest.isoformat())


def mapping_for(cfg, unit: str) -> SurveyMapping:
    folder = cfg.extra.get("mapping_dir")
    if not folder:
        raise ValueError(f"{cfg.conn_id}: extra.mapping_dir (folder of <form>.mapping.yml files) is not set")
    return load_mapping(Path(folder).expanduser() / f"{unit}.mapping.yml", default_form_id=unit)


def land_pages(conn, source: str, channel: str, unit: str, pages, mapping: SurveyMapping, to_response,
               interval, detail: dict[str, Any]) -> BatchResult:
    """One batch: every page upserted as it comes, malformed items quarantined, the mark advanced."""
    table = responses_table()
    typer = AnswerTyper(mapping.list_separator)
    with RawBatch(conn, source, "responses", unit=unit, interval=interval, mode="upsert", detail=detail) as b:
        table.ensure(conn)
        newest: dt.datetime | None = None
        pages_seen = 0
        for items in pages:
            part = f"page-{pages_seen}"
            pages_seen += 1
            b.read(len(items))
            good = []
            for i, item in enumerate(items):
                try:
                    good.append(to_response(item, mapping, typer))
                except ValueError as exc:
                    raw = json.dumps(item, ensure_ascii=False, default=str)
                    b.quarantine(str(exc), raw, row_number=i, source_part=part)
            if good:
                land_responses(b, table, channel, unit, good, source_part=part)
                newest = max([r.submitted_at for r in good] + ([newest] if newest else []))
        advance_mark(conn, source, unit, newest)
        b.detail.update(warnings=dict(typer.warnings), pages=pages_seen)
    assert b.result is not None
    return b.result


# -- source module interface --------------------------------------------------------------------
def units(cfg) -> list[str]:
    forms = cfg.extra.get("forms") or []
    if isinstance(forms, str):  # a URI-form connection carries a comma-separated string
        forms = [f.strip() for f in forms.split(",") if f.strip()]
    return [str(f) for f in forms]


def extract_load(cfg, unit: str, window: Window, conn) -> list[BatchResult]:
    mapping = mapping_for(cfg, unit)
    with conn.transaction():
        since, until = incremental_interval(conn, SOURCE, unit, cfg, window)
    client = TypeformClient.from_config(cfg)
    detail = {"since": since.isoformat() if since else None, "until": until.isoformat(), "mapping": mapping.source}
    with client.api:
        result = land_pages(conn, SOURCE, "typeform", unit, client.pages(unit, since, until), mapping,
                            item_to_response, (since, until), detail)
        log.info("typeform[%s]: %d requests, %d retries", unit, client.api.requests, client.api.retries)
    return [result]
