"""Bitrix24 REST source: ``units(cfg)`` and ``extract_load(cfg, unit, window, conn)``.

Connection (Airflow ``bitrix24_default``): host = the incoming webhook
``https://portal.bitrix24.ru/rest/<user_id>/<secret>``, or just the portal host (or
``…/rest/<user_id>``) with the secret in the password and the user id in the login (default 1).
``extra``:

* ``portals``: several portals — a list of names (``acme`` → ``https://acme.bitrix24.ru``, same
  login/password) or a mapping name → webhook URL; default ``["default"]`` = the connection itself;
* ``start_date`` (history: only records modified since), ``lookback_days`` (2), ``paging`` (``offset`` = start/next with batched pages, or ``cursor``),
  ``use_batch`` (true), ``history_batch_rows`` (5000 rows per committed history batch),
  ``detect_deleted`` (``deals, contacts, companies``), ``max_deleted_share`` (0.5: refuse to flag more), ``deal_categories`` (pipelines besides the
  default, for ``DEAL_STAGE_<id>``), ``bucket_size`` (50) / ``drain_rate`` (2/s) of the client-side
  throttle, ``max_retries`` (6), ``backoff_base`` (1 s), ``timeout`` (30 s), ``entities``.

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
