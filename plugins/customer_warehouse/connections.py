"""Source and warehouse settings, read from Airflow connections.

Airflow connections are the one place where hosts and secrets live. Inside a task they come
through Airflow's secrets backends; on the command line the same ``AIRFLOW_CONN_*`` environment
variables (URI or JSON form) are read, so a debugging run uses exactly the production settings.
The rest of the package receives a plain :class:`SourceConfig` and never imports Airflow.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Connection ids of every source, by source name. A source without a connection is skipped.
SOURCE_CONN_IDS: dict[str, str] = {
    "metrica": "yandex_metrica_default",
    "amocrm": "amocrm_default",
    "bitrix24": "bitrix24_default",
    "typeform": "typeform_default",
    "yandex_forms": "yandex_forms_default",
    "crm_files": "crm_files_default",
    "survey_files": "survey_files_default",
}
WAREHOUSE_CONN_ID = "warehouse_default"


@dataclass(frozen=True)
class SourceConfig:
    """What a client needs from a connection: base URL, credentials, extras."""

    conn_id: str
    conn_type: str = ""
    host: str = ""
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        """The API base URL: the connection host (with scheme), plus port when given separately."""
        host = self.host.rstrip("/")
        if host and "://" not in host:
            host = f"https://{host}"
        if self.port and host.count(":") < 2:
            host = f"{host}:{self.port}"
        return host

    @property
    def path(self) -> str:
        """For file connections (type ``fs``): the folder to read."""
        return str(self.extra.get("path") or self.host or "")


def _from_env(conn_id: str) -> SourceConfig | None:
    raw = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not raw:
        return None
    raw = raw.strip()
    if raw.startswith("{"):
        data = json.loads(raw)
        extra = data.get("extra") or {}
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        return SourceConfig(
            conn_id=conn_id,
            conn_type=data.get("conn_type", ""),
            host=data.get("host") or "",
            login=data.get("login"),
            password=data.get("password"),
            schema=data.get("schema"),
            port=data.get("port"),
            extra=extra,
        )
    return _from_uri(conn_id, raw)


def _from_uri(conn_id: str, uri: str) -> SourceConfig:
    from urllib.parse import parse_qsl, unquote, urlsplit

    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query))
    extra: dict[str, Any] = {}
    if "__extra__" in query:
        extra = json.loads(query.pop("__extra__"))
    extra.update(query)
    return SourceConfig(
        conn_id=conn_id,
        conn_type=parts.scheme.replace("-", "_"),
        host=unquote(parts.hostname or ""),
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        schema=unquote(parts.path.lstrip("/")) or None,
        port=parts.port,
        extra=extra,
    )


def get_connection(conn_id: str) -> SourceConfig | None:
    """The connection ``conn_id``, or None when it is not configured anywhere."""
    found = _from_env(conn_id)
    if found is not None:
        return found
    if os.environ.get("CW_NO_AIRFLOW_LOOKUP"):
        return None
    try:  # other secrets backends (metadata DB, Vault…) are only reachable through Airflow
        from airflow.sdk import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException  # type: ignore[attr-defined]
    except Exception:  # pragma: no cover - Airflow always installed with the package
        return None
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as exc:  # metadata DB unreachable outside a deployment
        log.debug("connection %s not resolvable through Airflow: %s", conn_id, exc)
        return None
    return SourceConfig(
        conn_id=conn_id,
        conn_type=conn.conn_type or "",
        host=conn.host or "",
        login=conn.login,
        password=conn.password,
        schema=conn.schema,
        port=conn.port,
        extra=conn.extra_dejson or {},
    )


def source_config(source: str) -> SourceConfig | None:
    """The configured connection of a source, or None (logged) when the source is not set up."""
    conn_id = SOURCE_CONN_IDS[source]
    cfg = get_connection(conn_id)
    if cfg is None:
        log.info("source %s skipped: no Airflow connection %r configured", source, conn_id)
    return cfg
