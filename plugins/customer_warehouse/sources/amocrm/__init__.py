"""amoCRM API v4 source: ``units(cfg)`` and ``extract_load(cfg, unit, window, conn)``.

Connection (Airflow ``amocrm_default``): host = the account URL (``https://acme.amocrm.ru``),
password = access token (long-lived, or the current OAuth access token). ``extra``:

* OAuth refresh: ``client_id``, ``client_secret``, ``refresh_token`` (``redirect_uri``); the
  rotated pair is kept in ``raw_meta.extract_state`` (key ``oauth``) and used by later runs;
* ``accounts``: several accounts — a list of names (``acme`` → ``https://acme.amocrm.ru``) or a
  mapping name → URL or ``{"base_url", "token"}``; default ``["default"]`` = the host itself;
* ``start_date`` (history start, else the oldest record), ``lookback_days`` (2),
  ``requests_per_second`` (7, amoCRM's documented limit; ``rate_limit`` is the older name;
  ``0`` = no client-side throttle — for emulators and the benchmark only, a real account that
  goes over 7 requests/s gets blocked), ``page_limit`` (250), ``max_retries`` (5), ``backoff_base`` (1 s),
  ``timeout`` (30 s), ``entities`` (restrict to some lists), ``note_entity_types`` and
  ``custom_field_entity_types`` (``leads, contacts, companies``).

Lands ``raw_amocrm.{leads, contacts, companies, tasks, users, pipelines, loss_reasons,
custom_fields, notes, events}`` as described in docs/raw-layer.md.
"""

from .client import AmoAuthError, AmoBlockedError, AmoClient, AmoError, OAuthCredentials, RequestThrottle
from .loader import SCHEMA, SOURCE, all_entities, extract_load, raw_table, units

__all__ = [
    "SCHEMA",
    "SOURCE",
    "AmoAuthError",
    "AmoBlockedError",
    "AmoClient",
    "AmoError",
    "OAuthCredentials",
    "RequestThrottle",
    "all_entities",
    "extract_load",
    "raw_table",
    "units",
]
