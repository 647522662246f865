"""Metrica loader settings, read from the ``yandex_metrica_default`` connection.

Host: the API host (default ``https://api-metrika.yandex.net``); password: the OAuth token.
``extra`` keys (all optional except ``counter_ids``):

===================== ================================================================
``counter_ids``       counters to load: list or comma-separated string (the DAG maps over them)
``visit_fields``      Logs API visit fields (list or comma string); default :data:`DEFAULT_VISIT_FIELDS`
``hit_fields``        hit fields (``ym:pv:*``); hits are not loaded unless given
``search_phrases``    load the Reporting API search-phrase report (default true)
``lookback_days``     nightly re-pull of D-n … D (default 3): visits settle for about 3 days
``start_date``        first day of history on the first run (default D − 365)
``counter_timezone``  override the counter's time zone (otherwise read from the counter)
``attribution``       ``attribution`` parameter of log requests (default: not sent)
``poll_interval``, ``poll_max_interval``, ``poll_timeout``   seconds (5, 60, 1800)
``retries``, ``backoff``, ``max_sleep``, ``http_timeout``     HTTP retry policy (8, 1, 120, 120)
``request_attempts``  new requests after ``processing_failed`` (default 3)
``download_attempts`` downloads of a damaged part (default 3)
``report_page_size``, ``report_accuracy``                      Reporting API (10000, ``full``)
===================== ================================================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ...connections import SourceConfig
from .http import DEFAULT_HOST, RetryPolicy
from .logs_client import PollSettings

DEFAULT_VISIT_FIELDS: tuple[str, ...] = (
    "ym:s:visitID",
    "ym:s:clientID",
    "ym:s:dateTime",
    "ym:s:date",
    "ym:s:isNewUser",
    "ym:s:startURL",
    "ym:s:endURL",
    "ym:s:pageViews",
    "ym:s:visitDuration",
    "ym:s:bounce",
    "ym:s:goalsID",
    "ym:s:goalsDateTime",
    "ym:s:purchaseID",
    "ym:s:purchaseRevenue",
    "ym:s:regionCity",
    "ym:s:regionCountry",
    "ym:s:deviceCategory",
    "ym:s:referer",
    "ym:s:lastsignTrafficSource",
    "ym:s:lastsignSearchEngine",
    "ym:s:lastsignUTMSource",
    "ym:s:lastsignUTMMedium",
    "ym:s:lastsignUTMCampaign",
    "ym:s:lastsignUTMTerm",
)
VISIT_DATE_FIELD = "ym:s:date"
HIT_DATE_FIELD = "ym:pv:date"


def as_list(value: Any) -> list[str]:
    """A list from a JSON list or a comma-separated string (connection extras come as either)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, int | float):
        return [str(int(value))]
    return [str(v).strip() for v in value if str(v).strip()]


def as_bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() not in ("0", "false", "no", "off", "")
    return bool(value)


def with_date_field(fields: list[str], date_field: str) -> tuple[str, ...]:
    """The requested fields, de-duplicated, always including the date the loader keys on."""
    out = list(dict.fromkeys(fields))
    if date_field not in out:
        out.append(date_field)
    return tuple(out)


@dataclass(frozen=True)
class MetricaSettings:
    base_url: str
    token: str | None
    conn_id: str
    counter_ids: tuple[str, ...]
    visit_fields: tuple[str, ...]
    hit_fields: tuple[str, ...]
    search_phrases: bool
    lookback_days: int
    start_date: dt.date | None
    counter_timezone: str | None
    attribution: str | None
    poll: PollSettings
    retry: RetryPolicy
    http_timeout: float
    request_attempts: int
    download_attempts: int
    report_page_size: int
    report_accuracy: str

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> MetricaSettings:
        x = cfg.extra or {}
        hits = as_list(x.get("hit_fields"))
        start = x.get("start_date")
        return cls(
            base_url=cfg.base_url or DEFAULT_HOST,
            token=cfg.password or x.get("token"),
            conn_id=cfg.conn_id,
            counter_ids=tuple(as_list(x.get("counter_ids"))),
            visit_fields=with_date_field(as_list(x.get("visit_fields")) or list(DEFAULT_VISIT_FIELDS),
                                         VISIT_DATE_FIELD),
            hit_fields=with_date_field(hits, HIT_DATE_FIELD) if hits else (),
            search_phrases=as_bool(x.get("search_phrases"), True),
            lookback_days=int(x.get("lookback_days", 3)),
            start_date=dt.date.fromisoformat(str(start)) if start else None,
            counter_timezone=x.get("counter_timezone") or None,
            attribution=x.get("attribution") or None,
            poll=PollSettings(float(x.get("poll_interval", 5)), float(x.get("poll_max_interval", 60)),
                              float(x.get("poll_timeout", 1800))),
            retry=RetryPolicy(int(x.get("retries", 8)), float(x.get("backoff", 1)), float(x.get("max_sleep", 120))),
            http_timeout=float(x.get("http_timeout", 120)),
            request_attempts=int(x.get("request_attempts", 3)),
            download_attempts=int(x.get("download_attempts", 3)),
            # the API allows 100000 rows a page, but one such page parsed is ~500 MB in Python: pages
            # of 10000 keep the extract's memory flat whatever the counter's size (a few more requests)
            report_page_size=int(x.get("report_page_size", 10_000)),
            report_accuracy=str(x.get("report_accuracy", "full")),
        )
