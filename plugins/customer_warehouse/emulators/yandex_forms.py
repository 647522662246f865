"""Yandex Forms API emulator (``/v1``): answers page by page, and the asynchronous export.

Serves ``DIR/yandex_forms/<survey_id>/answers.jsonl`` — one answer a line, as the demo
generator writes it: ``{"id": 123, "survey_id": ..., "created": "2026-11-20T07:15:00Z",
"answer": {"data": {<slug>: {"value": <text | number | [{"key", "text"}]>}}}, "params":
{<hidden>: ...}}`` (a flat ``"data": [{"id", "slug", "value"}]`` is served just as well: items
are passed through untouched) — and ``survey.json``. Requests need ``Authorization: OAuth <token>`` (401 otherwise) and
``X-Org-Id`` equal to ``org_id`` (403 otherwise).

* ``GET /v1/surveys/{id}/answers`` — ``page_size`` (1–100, default 25) with an opaque ``next``
  cursor in the answer (``{"answers": [...], "next": "<cursor>" | null}``; with
  ``next_style="url"`` the cursor is a ready URL path instead), or ``limit``/``offset``
  (``{"answers": [...], "total": n}``). ``date_from`` (inclusive) / ``date_to`` (inclusive)
  filter on ``created``. Oldest first. An unknown cursor → 400.
* ``POST /v1/surveys/{id}/answers/export`` ``{"format": "json", "date_from"?, "date_to"?}`` →
  ``{"id": <operation>, "status": "running"}`` (202); other formats → 400 (the emulator only
  writes JSON).
* ``GET /v1/operations/{id}`` → ``running`` for the first ``export_polls`` polls, then ``ok``.
* ``GET /v1/surveys/{id}/answers/export-results?task_id=<operation>`` → ``{"answers": [...]}``
  once the operation is ``ok`` (409 before).

``today`` (default: the manifest's) hides answers created after that day.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from . import faults

MAX_PAGE_SIZE = 100


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


def _parse_time(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _created(item: Any) -> dt.datetime | None:
    try:
        return _parse_time(str(item["created"]))
    except (KeyError, TypeError, ValueError):
        return None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def _offset_of(cursor: str) -> int | None:
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["o"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(slots=True)
class _Answer:
    """One answer as stored (its JSON text, parsed again only when served) and its ``created``."""

    raw: bytes
    when: dt.datetime | None

    def value(self) -> Any:
        return json.loads(self.raw)


def _values(answers: list[_Answer]) -> list[Any]:
    return [a.value() for a in answers]


class _Surveys:
    def __init__(self, root: Path, today: dt.date | None):
        self.root, self.today = root, today
        self._cache: dict[str, list[_Answer]] = {}

    def answers(self, survey_id: str) -> list[_Answer] | None:
        if survey_id not in self._cache:
            path = self.root / survey_id / "answers.jsonl"
            if not path.exists():
                return None
            cutoff = (dt.datetime.combine(self.today + dt.timedelta(days=1), dt.time(), dt.UTC)
                      if self.today else None)
            keyed = []
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                when = _created(item)
                if cutoff is not None and when is not None and when >= cutoff:
                    continue
                key = ((when or dt.datetime.min.replace(tzinfo=dt.UTC)).isoformat(),
                       str(item.get("id")) if isinstance(item, dict) else "")
                keyed.append((key, _Answer(line.encode("utf-8"), when)))
            keyed.sort(key=lambda pair: pair[0])
            self._cache[survey_id] = [answer for _, answer in keyed]
        return self._cache[survey_id]


def _filtered(items: list[_Answer], date_from: str | None, date_to: str | None) -> list[_Answer]:
    low = _parse_time(date_from) if date_from else None
    high = _parse_time(date_to) if date_to else None
    out = []
    for item in items:
        when = item.when
        if when is None or ((low is None or when >= low) and (high is None or when <= high)):
            out.append(item)
    return out


def create_app(data_dir: str | Path, *, today: dt.date | None = None, token: str = "demo-token",
               org_id: str = "demo-org", export_polls: int = 2, next_style: str = "token") -> FastAPI:
    data_dir = Path(data_dir)
    if today is None and (data_dir / "manifest.json").exists():
        value = json.loads((data_dir / "manifest.json").read_text()).get("today")
        today = dt.date.fromisoformat(value) if value else None
    surveys = _Surveys(data_dir / "yandex_forms", today)
    operations: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    ids = itertools.count(1)
    app = FastAPI(title="Yandex Forms emulator")
    faults.install(app)

    def denied(request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"OAuth {token}":
            return _error(401, "Invalid OAuth token")
        if request.headers.get("x-org-id") != str(org_id):
            return _error(403, "X-Org-Id header is missing or names another organization")
        return None

    def survey_answers(survey_id: str):
        items = surveys.answers(survey_id)
        return items if items is not None else _error(404, f"survey {survey_id} not found")

    @app.get("/v1/surveys/{survey_id}")
    def survey(survey_id: str, request: Request):
        if (bad := denied(request)) is not None:
            return bad
        path = data_dir / "yandex_forms" / survey_id / "survey.json"
        if not path.exists():
            return _error(404, f"survey {survey_id} not found")
        return JSONResponse(json.loads(path.read_text(encoding="utf-8")))

    @app.get("/v1/surveys/{survey_id}/answers")
    def answers(survey_id: str, request: Request, page_size: int = 25, next: str | None = None,
                limit: int | None = None, offset: int | None = None, date_from: str | None = None,
                date_to: str | None = None):
        if (bad := denied(request)) is not None:
            return bad
        items = survey_answers(survey_id)
        if isinstance(items, JSONResponse):
            return items
        try:
            matched = _filtered(items, date_from, date_to)
        except ValueError:
            return _error(400, "date_from/date_to must be ISO 8601")
        if limit is not None or offset is not None:
            size, start = limit or 25, offset or 0
            if not 1 <= size <= MAX_PAGE_SIZE or start < 0:
                return _error(400, f"limit must be 1..{MAX_PAGE_SIZE} and offset ≥ 0")
            return {"answers": _values(matched[start:start + size]), "total": len(matched)}
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return _error(400, f"page_size must be 1..{MAX_PAGE_SIZE}")
        start = 0 if next is None else _offset_of(next)
        if start is None:
            return _error(400, "invalid next cursor")
        page = matched[start:start + page_size]
        end = start + len(page)
        cursor = _cursor(end) if end < len(matched) else None
        if cursor and next_style == "url":
            query = {"page_size": page_size, "next": cursor, "date_from": date_from, "date_to": date_to}
            qs = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
            cursor = f"/v1/surveys/{survey_id}/answers?{qs}"
        return {"answers": _values(page), "next": cursor}

    @app.post("/v1/surveys/{survey_id}/answers/export")
    async def start_export(survey_id: str, request: Request):
        if (bad := denied(request)) is not None:
            return bad
        items = survey_answers(survey_id)
        if isinstance(items, JSONResponse):
            return items
        body = await request.json() if await request.body() else {}
        if body.get("format", "xlsx") != "json":
            return _error(400, "the emulator exports only format=json")
        try:
            matched = _filtered(items, body.get("date_from"), body.get("date_to"))
        except ValueError:
            return _error(400, "date_from/date_to must be ISO 8601")
        with lock:
            op_id = f"op{next(ids):06d}"
            operations[op_id] = {"survey_id": survey_id, "polls": 0, "answers": matched}
        return JSONResponse({"id": op_id, "status": "running"}, status_code=202)

    @app.get("/v1/operations/{operation_id}")
    def operation(operation_id: str, request: Request):
        if (bad := denied(request)) is not None:
            return bad
        with lock:
            op = operations.get(operation_id)
            if op is None:
                return _error(404, f"operation {operation_id} not found")
            op["polls"] += 1
            status = "ok" if op["polls"] > export_polls else "running"
            op["status"] = status
        return {"id": operation_id, "status": status}

    @app.get("/v1/surveys/{survey_id}/answers/export-results")
    def export_results(survey_id: str, request: Request, task_id: str):
        if (bad := denied(request)) is not None:
            return bad
        op = operations.get(task_id)
        if op is None or op["survey_id"] != survey_id:
            return _error(404, f"export {task_id} not found")
        if op.get("status") != "ok":
            return _error(409, f"export {task_id} is not finished")
        return {"answers": _values(op["answers"])}

    return app
