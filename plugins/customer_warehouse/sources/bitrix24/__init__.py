"""Bitrix24 REST source: ``units(cfg)`` and ``extract_load(cfg, unit, window, conn)``.

Connection (Airflow ``bitrix24_default``): host = the incoming webhook
``https://portal.bitrix24.ru/rest/<user_id>/<secret>``, or just the portal host (or
``…/rest/<user_id>``) with the secret in the password and the user id in the login (default 1).
``extra``:

* ``portals``: several portals — a list of names (``acme`` → ``https://acme.bitrix24.ru``, same
  login/password) or a mapping name → webhook URL; default ``["default"]`` = the connection itself;
* ``start_date`` (history: only records modified since), ``lookback_days`` (2), ``paging``
  (incremental: ``offset`` = start/next with batched pages, or ``cursor``), ``use_batch`` (true;
  false walks history one request per page), ``chain_pages`` (50 pages chained in one ``batch`` by
  the history and deleted-ID walks), ``history_batch_rows`` (5000 rows per committed history batch),
  ``detect_deleted`` (``deals, contacts, companies``), ``max_deleted_share`` (0.5: refuse to flag
  more), ``deal_categories`` (pipelines besides the default, for ``DEAL_STAGE_<id>``),
  ``max_retries`` (6), ``backoff_base`` (1 s), ``timeout`` (30 s; ``batch_timeout`` the same
  unless set; a retry after a read time-out waits twice as long, up to 4x), ``entities``;
* the client-side throttle, mirroring the portal's leaky bucket: ``requests_per_second`` (2, the
  documented drain rate; Enterprise plans drain 5) and ``burst`` (50, the bucket; Enterprise 250).
  ``requests_per_second: 0`` switches the throttle off — only for emulators with their limit lifted
  and benchmarks; a real portal then answers 503 ``QUERY_LIMIT_EXCEEDED`` (retried with backoff).
  The older names ``drain_rate`` / ``bucket_size`` are still read when the new ones are absent.

Lands ``raw_bitrix24.{deals, contacts, companies, activities, deal_stages, deal_userfields}``
as described in docs/raw-layer.md.
"""

from .client import Bitrix24AuthError, Bitrix24Client, Bitrix24Error, LeakyBucket
from .loader import ENTITIES, SCHEMA, SOURCE, extract_load, raw_table, units, webhook_url

__all__ = [
    "ENTITIES",
    "SCHEMA",
    "SOURCE",
    "Bitrix24AuthError",
    "Bitrix24Client",
    "Bitrix24Error",
    "LeakyBucket",
    "extract_load",
    "raw_table",
    "units",
    "webhook_url",
]
