"""Yandex Metrica source: raw visits and hits (Logs API) and search phrases (Reporting API).

The DAG maps :func:`extract_load` over :func:`units` (the counter ids). Settings come from the
``yandex_metrica_default`` connection (see :mod:`.settings` for the ``extra`` keys); what lands
where is in docs/raw-layer.md and :mod:`.load`.
"""

from __future__ import annotations

from ...connections import SourceConfig
from ...loading import BatchResult
from .. import Window
from .http import MetricaAPIError, MetricaAuthError, MetricaError, MetricaHTTP
from .load import HITS, VISITS, load_logs, load_search_phrases, ready_connection
from .logs_client import LogsClient, PartIntegrityError, PollTimeout
from .reporting_client import ReportingClient
from .settings import DEFAULT_VISIT_FIELDS, MetricaSettings
from .tsv import field_to_column

__all__ = [
    "DEFAULT_VISIT_FIELDS",
    "MetricaAPIError",
    "MetricaAuthError",
    "MetricaError",
    "PartIntegrityError",
    "PollTimeout",
    "extract_load",
    "field_to_column",
    "units",
]


def units(cfg: SourceConfig) -> list[str]:
    """The counter ids from ``extra["counter_ids"]`` (list or comma-separated string)."""
    return list(MetricaSettings.from_config(cfg).counter_ids)


def extract_load(cfg: SourceConfig, unit: str, window: Window, conn) -> list[BatchResult]:
    """Load counter ``unit``: visits, then hits (when ``hit_fields`` are set), then search phrases.

    ``conn`` is a psycopg 3 connection to the warehouse; saved request ids are committed on it
    as the run goes, so a retried task resumes polling instead of queueing new requests.
    """
    settings = MetricaSettings.from_config(cfg)
    counter = int(unit)
    ready_connection(conn)
    results = []
    with MetricaHTTP(settings.base_url, settings.token, counter, policy=settings.retry,
                     timeout=settings.http_timeout, conn_id=settings.conn_id) as http:
        logs = LogsClient(http, counter, poll=settings.poll, download_attempts=settings.download_attempts,
                          attribution=settings.attribution)
        tz = settings.counter_timezone or logs.counter_timezone() or window.tz
        results.append(load_logs(conn, logs, VISITS, settings.visit_fields, window, settings, tz))
        if settings.hit_fields:
            results.append(load_logs(conn, logs, HITS, settings.hit_fields, window, settings, tz))
        if settings.search_phrases:
            reporting = ReportingClient(http, counter, page_size=settings.report_page_size,
                                        accuracy=settings.report_accuracy)
            results.append(load_search_phrases(conn, reporting, window, settings, tz))
    return results
