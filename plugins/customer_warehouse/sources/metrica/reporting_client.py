"""Yandex Metrica Reporting API client (``/stat/v1/data``): search phrases by day.

Search phrases are not in the Logs API. The report asks for one row per date × phrase ×
landing page × last-click UTM tags with visits and users, pages through it with ``offset``
(from 1) and ``limit`` (≤ 100,000), and keeps each answer's ``sampled`` and ``sample_share``
so that dbt can tell an exact count from an estimate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .http import MetricaHTTP

SEARCH_DIMENSIONS: tuple[str, ...] = (
    "ym:s:date",
    "ym:s:lastSearchPhrase",
    "ym:s:startURL",
    "ym:s:lastUTMSource",
    "ym:s:lastUTMMedium",
    "ym:s:lastUTMCampaign",
    "ym:s:lastUTMTerm",
)
SEARCH_METRICS: tuple[str, ...] = ("ym:s:visits", "ym:s:users")
MAX_LIMIT = 100_000


@dataclass(frozen=True)
class ReportPage:
    rows: list[dict[str, Any]]
    offset: int
    total_rows: int
    sampled: bool
    sample_share: float | None


class ReportingClient:
    def __init__(self, http: MetricaHTTP, counter_id: int, *, page_size: int = MAX_LIMIT,
                 accuracy: str = "full"):
        self.http = http
        self.counter_id = counter_id
        self.page_size = max(1, min(MAX_LIMIT, int(page_size)))
        self.accuracy = accuracy

    def pages(self, date1: dt.date, date2: dt.date, dimensions: Sequence[str] = SEARCH_DIMENSIONS,
              metrics: Sequence[str] = SEARCH_METRICS) -> Iterator[ReportPage]:
        """Every page of the report, in order, until ``total_rows`` are seen."""
        offset = 1
        while True:
            body = self.http.json("GET", "/stat/v1/data", {
                "ids": str(self.counter_id),
                "dimensions": ",".join(dimensions),
                "metrics": ",".join(metrics),
                "date1": date1.isoformat(),
                "date2": date2.isoformat(),
                "offset": offset,
                "limit": self.page_size,
                "accuracy": self.accuracy,
                # a stable order, so that offset paging neither skips nor repeats rows
                "sort": ",".join(dimensions),
            })
            rows = list(body.get("data") or [])
            total = int(body.get("total_rows") or 0)
            share = body.get("sample_share")
            yield ReportPage(rows, offset, total, bool(body.get("sampled", False)),
                             float(share) if share is not None else None)
            offset += len(rows)
            if not rows or offset > total:
                return
