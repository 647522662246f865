"""Typeform Responses API emulator.

Serves ``DIR/typeform/<form_id>/responses.jsonl`` (one Responses API item a line, exactly as
Typeform returns it: ``token``, ``landed_at``, ``submitted_at``, ``hidden``, ``answers`` …) and
``DIR/typeform/<form_id>/form.json``, with the real protocol:

* ``GET /forms/{form_id}/responses`` — ``Authorization: Bearer <token>`` (else 401
  ``AUTHENTICATION_FAILED``); ``page_size`` 1–1000 (default 25, more → 400); ``since``/``until``
  inclusive on ``submitted_at`` (ISO 8601 or Unix seconds); items newest first; ``before``/
  ``after`` response-token cursors, exclusive, refused together with ``sort`` (400); ``sort``
  ``submitted_at,asc|desc``; answer ``{total_items, page_count, items}`` where the totals count
  what the filters (without the cursor) match. Only submitted responses are listed.
* ``GET /forms/{form_id}`` — ``form.json`` when present.

``today`` (default: ``manifest.json``'s) hides responses submitted after that day, so the demo
is deterministic. Items are kept as loaded: a malformed line of the data file is served as it is
(after JSON parsing) so that clients' quarantine can be exercised. Memory: each response is kept
as its JSON text and parsed when a page is served.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse

from . import faults

MAX_PAGE_SIZE = 1000


def _error(status: int, code: str, description: str) -> JSONResponse:
    return JSONResponse({"code": code, "description": description}, status_code=status)


def _parse_time(value: str) -> dt.datetime:
    """ISO 8601 (naive = UTC) or Unix seconds, as Typeform accepts for since/until."""
    if value.isdigit():
        return dt.datetime.fromtimestamp(int(value), dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _item_time(item: Any) -> dt.datetime | None:
    try:
        return _parse_time(str(item["submitted_at"]))
    except (KeyError, TypeError, ValueError):
        return None


def _today_from_manifest(data_dir: Path) -> dt.date | None:
    manifest = data_dir / "manifest.json"
    if manifest.exists():
        today = json.loads(manifest.read_text()).get("today")
        return dt.date.fromisoformat(today) if today else None
    return None


@dataclass(slots=True)
class _Item:
    """One response as stored (its JSON text, parsed again only when served — a parsed response
    takes ~6x its text in memory) with what listing it needs."""

    raw: bytes
    when: dt.datetime | None
    token: Any

    def value(self) -> Any:
        return json.loads(self.raw)


class _Forms:
    """Responses per form, loaded once and kept sorted newest first."""

    def __init__(self, root: Path, today: dt.date | None):
        self.root, self.today = root, today
        self._cache: dict[str, list[_Item]] = {}

    def responses(self, form_id: str) -> list[_Item] | None:
        if form_id not in self._cache:
            path = self.root / form_id / "responses.jsonl"
            if not path.exists():
                return None
            cutoff = (dt.datetime.combine(self.today + dt.timedelta(days=1), dt.time(), dt.UTC)
                      if self.today else None)
            keyed = []
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                if isinstance(item, dict) and item.get("submitted_at") is None:
                    continue
                if cutoff is not None and not _before(item, cutoff):
                    continue
                token = item.get("token") if isinstance(item, dict) else None
                keyed.append((_order_key(item), _Item(line.encode("utf-8"), _item_time(item), token)))
            keyed.sort(key=lambda pair: pair[0], reverse=True)
            self._cache[form_id] = [entry for _, entry in keyed]
        return self._cache[form_id]


def _before(item: Any, cutoff: dt.datetime) -> bool:
    when = _item_time(item)
    return when is None or when < cutoff


def _order_key(item: Any) -> tuple[str, str]:
    if not isinstance(item, dict):
        return ("", "")
    when = _item_time(item)
    return (when.isoformat() if when else str(item.get("submitted_at", "")), str(item.get("token", "")))


def create_app(data_dir: str | Path, *, today: dt.date | None = None, token: str = "demo-token") -> FastAPI:
    data_dir = Path(data_dir)
    forms = _Forms(data_dir / "typeform", today or _today_from_manifest(data_dir))
    app = FastAPI(title="Typeform emulator")
    faults.install(app)

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization", "") == f"Bearer {token}"

    @app.get("/forms/{form_id}")
    def form(form_id: str, request: Request):
        if not authorised(request):
            return _error(401, "AUTHENTICATION_FAILED", "Authentication credentials not found on the Request Headers")
        path = data_dir / "typeform" / form_id / "form.json"
        if not path.exists():
            return _error(404, "FORM_NOT_FOUND", f"Non existing form with uid {form_id}")
        return JSONResponse(json.loads(path.read_text(encoding="utf-8")))

    @app.get("/forms/{form_id}/responses")
    def responses(form_id: str, request: Request, page_size: int = Query(25), since: str | None = None,
                  until: str | None = None, before: str | None = None, after: str | None = None,
                  sort: str | None = None):
        if not authorised(request):
            return _error(401, "AUTHENTICATION_FAILED", "Authentication credentials not found on the Request Headers")
        items = forms.responses(form_id)
        if items is None:
            return _error(404, "FORM_NOT_FOUND", f"Non existing form with uid {form_id}")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return _error(400, "VALIDATION_ERROR", f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        if sort and (before or after):
            return _error(400, "VALIDATION_ERROR", "sort cannot be used together with before or after")
        try:
            low = _parse_time(since) if since else None
            high = _parse_time(until) if until else None
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "since/until must be ISO 8601 date-times or Unix timestamps")
        matched = [i for i in items if _in_range(i.when, low, high)]
        if sort and sort.replace(" ", "").lower() in ("submitted_at,asc",):
            matched = matched[::-1]
        page = _page(matched, page_size, before, after)
        if page is None:
            return _error(400, "VALIDATION_ERROR", "unknown response token in before/after")
        return {"total_items": len(matched), "page_count": math.ceil(len(matched) / page_size),
                "items": [i.value() for i in page]}

    return app


def _in_range(when: dt.datetime | None, low: dt.datetime | None, high: dt.datetime | None) -> bool:
    if when is None:
        return True  # malformed: let the client see it
    return (low is None or when >= low) and (high is None or when <= high)


def _page(items: list, size: int, before: str | None, after: str | None) -> list | None:
    """The page after the cursor; items are newest first, ``before`` walks to older ones."""
    if not (before or after):
        return items[:size]
    tokens = [i.token for i in items]
    cursor = before or after
    if cursor not in tokens:
        return None
    at = tokens.index(cursor)
    if before:
        return items[at + 1: at + 1 + size]
    return items[max(0, at - size): at]  # the responses just newer than the token
