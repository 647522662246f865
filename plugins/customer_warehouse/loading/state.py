"""Extract state kept in the warehouse: saved Metrica request ids, high-water marks, cursors.

Kept in ``raw_meta.extract_state`` so that a task retry on another worker resumes where the
previous try stopped (for example polling the same Logs API request instead of creating one).
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from .tables import ensure_meta_schema


def get_state(conn, source: str, unit: str, key: str) -> Any:
    ensure_meta_schema(conn)
    row = conn.execute(
        "select value from raw_meta.extract_state where source = %s and unit = %s and key = %s",
        (source, unit, key),
    ).fetchone()
    return row[0] if row else None


def set_state(conn, source: str, unit: str, key: str, value: Any) -> None:
    ensure_meta_schema(conn)
    conn.execute(
        "insert into raw_meta.extract_state (source, unit, key, value, updated_at) values (%s, %s, %s, %s, now()) "
        "on conflict (source, unit, key) do update set value = excluded.value, updated_at = now()",
        (source, unit, key, Jsonb(value)),
    )


def clear_state(conn, source: str, unit: str, key: str) -> None:
    ensure_meta_schema(conn)
    conn.execute(
        "delete from raw_meta.extract_state where source = %s and unit = %s and key = %s", (source, unit, key)
    )
