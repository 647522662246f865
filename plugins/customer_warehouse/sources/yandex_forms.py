"""Yandex Forms API → ``raw_surveys.responses`` (channel ``yandex_forms``).

Base ``https://api.forms.yandex.net/v1``, headers ``Authorization: OAuth <token>`` and
``X-Org-Id``. The public reference names the endpoints (answers, answer export, export result,
operations) but the query parameter names are not pinned down, so everything that is a guess is
configuration, with defaults that the emulator implements:

``mode: pages`` (default)
    ``GET {answers_path}`` page by page. ``paging: token`` sends ``page_size`` and passes the
    answer's ``next`` back (as a query parameter, or followed as a URL when it is one);
    ``paging: offset`` sends ``limit``/``offset`` and stops at a short page.
``mode: export``
    ``POST {export_path}`` ``{"format": "json"}`` → an operation id; ``GET {operation_path}``
    until ``status`` is ``ok`` (``error``/``failed`` raise); then ``GET {export_result_path}``
    (or the ``result.url`` the operation gives) → ``{"answers": [...]}`` or a bare list.

Override names with extra ``params`` (``{"page_size": "page_size", "next": "next", "limit":
"limit", "offset": "offset", "date_from": "date_from", "date_to": "date_to"}``), ``items_field``
(``answers``), ``next_field`` (``next``), and the ``*_path`` templates (``{survey_id}``,
``{operation_id}``).

An answer item is ``{"id", "created", "answer": {"data": {<slug>: {"value": ...}}}, "params":
{<hidden>: ...}}`` or, flatter, ``{"id", "created", "data": [{"id": <question id>, "slug": ...,
"value": ...}]}``; values are text, numbers, booleans, lists of labels, or choice objects with
``text``/``label``. The mapping file ``<survey_id>.mapping.yml`` maps question ids or slugs under
``fields:`` (or ``questions:``) and ``params`` under ``hidden:``.

The base URL is the connection host; a host without a path gets ``/v1`` appended.

Incremental like Typeform: a high-water mark on ``created`` minus a lookback, passed as
``date_from`` (and ``date_to`` = the window's end); upserts make the overlap harmless.
Units: ``extra.surveys``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from ..loading import BatchResult
from . import Window
from .parsing import format_timestamp, parse_datetime
from .survey_files import AnswerTyper, Response, SurveyMapping
from .typeform import ApiClient, ApiError, incremental_interval, land_pages, mapping_for

log = logging.getLogger(__name__)

SOURCE = "yandex_forms"
DEFAULT_BASE = "https://api.forms.yandex.net/v1"
DEFAULT_PARAMS = {"page_size": "page_size", "next": "next", "limit": "limit", "offset": "offset",
                  "date_from": "date_from", "date_to": "date_to"}
DEFAULT_PATHS = {
    "answers_path": "/surveys/{survey_id}/answers",
    "export_path": "/surveys/{survey_id}/answers/export",
    "operation_path": "/operations/{operation_id}",
    "export_result_path": "/surveys/{survey_id}/answers/export-results?task_id={operation_id}",
}


class YandexFormsClient:
    def __init__(self, api: ApiClient, extra: dict[str, Any] | None = None):
        extra = extra or {}
        self.api = api
        self.mode = extra.get("mode", "pages")
        self.paging = extra.get("paging", "token")
        self.page_size = int(extra.get("page_size", 100))
        self.params = {**DEFAULT_PARAMS, **(extra.get("params") or {})}
        self.paths = {k: extra.get(k, v) for k, v in DEFAULT_PATHS.items()}
        self.items_field = extra.get("items_field", "answers")
        self.next_field = extra.get("next_field", "next")
        self.poll_interval = float(extra.get("poll_interval_seconds", 2.0))
        self.export_timeout = float(extra.get("export_timeout_seconds", 900))

    @classmethod
    def from_config(cls, cfg, **kwargs) -> YandexFormsClient:
        extra = cfg.extra
        if not extra.get("org_id"):
            raise ValueError(f"{cfg.conn_id}: extra.org_id (the X-Org-Id header) is not set")
        headers = {"Authorization": f"OAuth {cfg.password}", "X-Org-Id": str(extra["org_id"])}
        api = ApiClient(_base_url(cfg.base_url), headers,
                        min_interval=float(extra.get("min_interval_seconds", 0.5)),
                        backoff=float(extra.get("backoff_seconds", 1.0)), **kwargs)
        return cls(api, extra)

    def pages(self, survey_id: str, since=None, until=None) -> Iterator[list[dict]]:
        if self.mode == "export":
            yield from self._export(survey_id, since, until)
        elif self.paging == "offset":
            yield from self._offset_pages(survey_id, since, until)
        else:
            yield from self._token_pages(survey_id, since, until)

    # -- paging ---------------------------------------------------------------------------------
    def _filters(self, since, until) -> dict[str, str]:
        out = {}
        if since:
            out[self.params["date_from"]] = format_timestamp(since)
        if until:
            out[self.params["date_to"]] = format_timestamp(until)
        return out

    def _items(self, body: Any, where: str) -> list:
        items = body if isinstance(body, list) else body.get(self.items_field) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise ApiError(f"{where}: no {self.items_field!r} list in the answer")
        return items

    def _token_pages(self, survey_id: str, since, until) -> Iterator[list[dict]]:
        target = self.paths["answers_path"].format(survey_id=survey_id)
        params: dict[str, Any] | None = {self.params["page_size"]: self.page_size, **self._filters(since, until)}
        seen_cursors: set[str] = set()
        while True:
            body = self.api.json("GET", target, params=params)
            items = self._items(body, target)
            if items:
                yield items
            cursor = _next_cursor(body.get(self.next_field) if isinstance(body, dict) else None)
            if not cursor or not items:
                return
            if cursor in seen_cursors:
                raise ApiError(f"{target}: the API returned the same next cursor twice ({cursor!r})")
            seen_cursors.add(cursor)
            if cursor.startswith(("/", "http://", "https://")):
                target, params = _relative(cursor, self.api.base_url), None  # the URL carries the query
            else:
                params = {**(params or {}), self.params["next"]: cursor}

    def _offset_pages(self, survey_id: str, since, until) -> Iterator[list[dict]]:
        path = self.paths["answers_path"].format(survey_id=survey_id)
        offset = 0
        while True:
            params = {self.params["limit"]: self.page_size, self.params["offset"]: offset,
                      **self._filters(since, until)}
            items = self._items(self.api.json("GET", path, params=params), path)
            if items:
                yield items
            if len(items) < self.page_size:
                return
            offset += len(items)

    # -- asynchronous export --------------------------------------------------------------------
    def _export(self, survey_id: str, since, until) -> Iterator[list[dict]]:
        start = self.paths["export_path"].format(survey_id=survey_id)
        body = {"format": "json", **self._filters(since, until)}
        operation = self.api.json("POST", start, body=body)
        op_id = operation.get("id") or operation.get("operation_id") if isinstance(operation, dict) else None
        if not op_id:
            raise ApiError(f"{start}: no operation id in {operation!r}")
        done = self._wait(str(op_id))
        result = done.get("result") if isinstance(done.get("result"), dict) else {}
        target = result.get("url") or self.paths["export_result_path"].format(survey_id=survey_id,
                                                                              operation_id=op_id)
        items = self._items(self.api.json("GET", _relative(target, self.api.base_url)), target)
        for i in range(0, len(items), 1000):  # land in bounded chunks, like pages
            yield items[i:i + 1000]

    def _wait(self, op_id: str) -> dict:
        path = self.paths["operation_path"].format(operation_id=op_id)
        deadline = time.monotonic() + self.export_timeout
        while True:
            op = self.api.json("GET", path)
            status = str(op.get("status", "")).lower() if isinstance(op, dict) else ""
            if status in ("ok", "done", "success", "completed"):
                return op
            if status in ("error", "failed", "fail", "cancelled"):
                raise ApiError(f"export operation {op_id} ended with status {status!r}: {op}")
            if time.monotonic() > deadline:
                raise ApiError(f"export operation {op_id} not finished after {self.export_timeout:.0f}s")
            self.api.sleep(self.poll_interval)


def _base_url(configured: str) -> str:
    """The API root: the configured one, with ``/v1`` added to a bare host."""
    from urllib.parse import urlsplit

    if not configured:
        return DEFAULT_BASE
    return configured if urlsplit(configured).path.strip("/") else configured.rstrip("/") + "/v1"


def _next_cursor(value: Any) -> str | None:
    if isinstance(value, dict):  # {"next_url": ...} / {"cursor": ...} shapes
        value = value.get("next_url") or value.get("url") or value.get("cursor") or value.get("token")
    return str(value) if value else None


def _relative(target: str, base_url: str) -> str:
    """A URL the API gave back, made relative to the configured base when it points under it.

    The base URL may carry a path (``/v1``) that a server-relative link repeats.
    """
    from urllib.parse import urlsplit

    base_path = urlsplit(base_url).path.rstrip("/")
    if target.startswith("/") and base_path and target.startswith(base_path + "/"):
        return target[len(base_path):]
    return target


# -- mapping items ------------------------------------------------------------------------------
def _value(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("text") or value.get("label") or value.get("value")
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def item_to_response(item: Any, mapping: SurveyMapping, typer: AnswerTyper) -> Response:
    """A Yandex Forms answer as a mapped response; ValueError (the quarantine reason) when malformed."""
    if not isinstance(item, dict):
        raise ValueError("malformed answer: not an object")
    answer_id = item.get("id")
    if answer_id in (None, ""):
        raise ValueError("malformed answer: no id")
    try:
        created = parse_datetime(item.get("created"), "UTC")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"malformed answer: created {exc}") from None
    if created is None:
        raise ValueError("malformed answer: no created time")
    data = item.get("data")
    if data is None and isinstance(item.get("answer"), dict):
        data = item["answer"].get("data")
    if isinstance(data, dict):
        data = [{"id": k, "value": v["value"] if isinstance(v, dict) and "value" in v else v}
                for k, v in data.items()]
    if not isinstance(data or [], list) or not all(isinstance(d, dict) for d in data or []):
        raise ValueError("malformed answer: data must be a list of question answers")
    params = item.get("params") or item.get("hidden") or {}
    if not isinstance(params, dict):
        raise ValueError("malformed answer: params must be an object")
    raw: dict[str, Any] = {}
    for question in data or []:
        meaning = mapping.fields.get(str(question.get("id"))) or mapping.fields.get(str(question.get("slug")))
        if meaning and meaning not in raw:
            raw[meaning] = _value(question.get("value"))
    for name, meaning in mapping.hidden.items():
        if params.get(name) not in (None, "") and meaning not in raw:
            raw[meaning] = params[name]
    typed, respondent = typer.type_answers(raw)
    return Response(str(answer_id), created, typed, respondent, item)


# -- source module interface --------------------------------------------------------------------
def units(cfg) -> list[str]:
    surveys = cfg.extra.get("surveys") or []
    if isinstance(surveys, str):
        surveys = [s.strip() for s in surveys.split(",") if s.strip()]
    return [str(s) for s in surveys]


def extract_load(cfg, unit: str, window: Window, conn) -> list[BatchResult]:
    mapping = mapping_for(cfg, unit)
    with conn.transaction():
        since, until = incremental_interval(conn, SOURCE, unit, cfg, window)
    client = YandexFormsClient.from_config(cfg)
    detail = {"since": since.isoformat() if since else None, "until": until.isoformat(), "mapping": mapping.source,
              "mode": client.mode, "paging": client.paging}
    with client.api:
        result = land_pages(conn, SOURCE, "yandex_forms", unit, client.pages(unit, since, until), mapping,
                            item_to_response, (since, until), detail)
        log.info("yandex_forms[%s]: %d requests, %d retries", unit, client.api.requests, client.api.retries)
    return [result]
