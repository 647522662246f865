"""amoCRM → ``raw_amocrm``: what to pull, in which windows, and how it lands.

Reference lists (users, pipelines with statuses, loss reasons, custom-field definitions) are
small and have no change filter, so each run pulls them whole. Everything else is pulled by
``updated_at`` (events by ``created_at``) in ascending order:

* **history** (no high-water mark yet, or ``window.full``): from ``extra.start_date`` — or the
  oldest record the API reports — to ``window.end``, month by month. Each month is one batch and
  commits together with its progress cursor, so a crash resumes at the first uncommitted month;
  a retry of the same window continues instead of starting over.
* **incremental**: from ``min(high-water mark, window.start) − lookback_days`` to ``window.end``.
  The lookback re-reads records whose ``updated_at`` reached the API late; upserts keep the
  newest version, so re-reading is harmless and the same window twice gives identical tables.

Leads deleted in amoCRM are listed with ``with=only_deleted`` and named by ``lead_deleted``
events; both set ``is_deleted``. Records without an id or a readable ``updated_at``, and
non-objects, are quarantined with the reason. Each batch's ledger detail reports custom fields
with no definition in ``raw_amocrm.custom_fields`` and top-level fields not seen before.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import psycopg

from ...connections import SourceConfig
from ...loading import BatchResult, Column, RawBatch, RawTable, get_state, set_state
from ...loading.batch import copy_text_value, keep_nul_visible
from .. import Window
from .client import EVENTS_PAGE_LIMIT, PAGE_LIMIT, AmoClient, OAuthCredentials

log = logging.getLogger(__name__)

SOURCE = "amocrm"
SCHEMA = "raw_amocrm"
ENTITY_TYPES = ("leads", "contacts", "companies")
FLUSH_ROWS = 2_000
UTC = dt.UTC


class Rejected(ValueError):
    """A record that cannot be landed; the message is the quarantine reason."""


@dataclass(frozen=True)
class Entity:
    """One list of the API and where it lands.

    ``name`` is the ledger entity and the extract-state key; ``filter_field`` is the time the
    list is filtered and ordered by (None: a reference list pulled whole each run);
    ``version_field`` is the record time kept as ``updated_at``.
    """

    name: str
    path: str
    embedded: str
    table: str
    filter_field: str | None = "updated_at"
    version_field: str | None = "updated_at"
    entity_type: str | None = None
    id_text: bool = False
    limit: int = PAGE_LIMIT

    @property
    def group(self) -> str:
        return self.name.split(":")[0]


def all_entities(note_types: Iterable[str] = ENTITY_TYPES, field_types: Iterable[str] = ENTITY_TYPES) -> list[Entity]:
    """Every list in load order: references first (custom-field checks read their definitions),
    leads before events (``lead_deleted`` events flag leads already landed)."""
    refs = [
        Entity("users", "/api/v4/users", "users", "users", None, None),
        Entity("pipelines", "/api/v4/leads/pipelines", "pipelines", "pipelines", None, None),
        Entity("loss_reasons", "/api/v4/leads/loss_reasons", "loss_reasons", "loss_reasons", None),
        *(Entity(f"custom_fields:{t}", f"/api/v4/{t}/custom_fields", "custom_fields", "custom_fields", None, None,
                 entity_type=t) for t in field_types),
    ]
    changing = [
        Entity("leads", "/api/v4/leads", "leads", "leads"),
        Entity("contacts", "/api/v4/contacts", "contacts", "contacts"),
        Entity("companies", "/api/v4/companies", "companies", "companies"),
        Entity("tasks", "/api/v4/tasks", "tasks", "tasks"),
        *(Entity(f"notes:{t}", f"/api/v4/{t}/notes", "notes", "notes", entity_type=t) for t in note_types),
        Entity("events", "/api/v4/events", "events", "events", "created_at", "created_at", id_text=True,
               limit=EVENTS_PAGE_LIMIT),
    ]
    return refs + changing


def raw_table(ent: Entity) -> RawTable:
    """``raw_amocrm.<table>``: key ``(account[, entity_type], id)``, newest ``updated_at`` wins."""
    cols = [Column("account", "text")]
    if ent.entity_type:
        cols.append(Column("entity_type", "text"))
    cols += [Column("id", "text" if ent.id_text else "bigint"), Column("updated_at", "timestamptz")]
    if ent.table == "leads":
        cols.append(Column("is_deleted", "boolean not null default false"))
    cols.append(Column("record", "jsonb not null"))
    key = ("account", "entity_type", "id") if ent.entity_type else ("account", "id")
    return RawTable(SCHEMA, ent.table, cols, key=key, version_column="updated_at")


# -- settings ----------------------------------------------------------------------------------
@dataclass
class Settings:
    """What a run needs from the connection (``extra`` values may arrive as strings)."""

    base_url: str
    token: str | None
    oauth: OAuthCredentials | None
    lookback: dt.timedelta
    start_date: dt.date | None
    page_limit: int
    rate_limit: float
    max_retries: int
    backoff_base: float
    timeout: float
    only: set[str] = field(default_factory=set)
    note_types: tuple[str, ...] = ENTITY_TYPES
    field_types: tuple[str, ...] = ENTITY_TYPES

    @classmethod
    def from_config(cls, cfg: SourceConfig, unit: str) -> Settings:
        x = cfg.extra or {}
        base_url, token = _account(cfg, unit)
        oauth = None
        if x.get("client_id") and x.get("client_secret") and x.get("refresh_token"):
            oauth = OAuthCredentials(str(x["client_id"]), str(x["client_secret"]), str(x["refresh_token"]),
                                     str(x.get("redirect_uri", "")))
        start = x.get("start_date")
        return cls(
            base_url=base_url, token=token, oauth=oauth,
            lookback=dt.timedelta(days=float(x.get("lookback_days", 2))),
            start_date=dt.date.fromisoformat(str(start)[:10]) if start else None,
            page_limit=int(x.get("page_limit", PAGE_LIMIT)),
            rate_limit=_requests_per_second(x),
            max_retries=int(x.get("max_retries", 5)),
            backoff_base=float(x.get("backoff_base", 1.0)),
            timeout=float(x.get("timeout", 30)),
            only=set(_list(x.get("entities"))),
            note_types=tuple(_list(x.get("note_entity_types")) or ENTITY_TYPES),
            field_types=tuple(_list(x.get("custom_field_entity_types")) or ENTITY_TYPES),
        )


DOCUMENTED_REQUESTS_PER_SECOND = 7.0


def _requests_per_second(extra: dict[str, Any]) -> float:
    """The client's throttle: ``extra.requests_per_second`` (``rate_limit`` is the older name),
    default 7 — amoCRM's documented limit. ``0`` turns the client-side throttle off: only for
    emulators and the benchmark, a real account is blocked when it goes over its limit."""
    for name in ("requests_per_second", "rate_limit"):
        value = extra.get(name)
        if value is not None and str(value).strip() != "":
            rate = float(value)
            if rate < 0:
                raise ValueError(f"amocrm connection extra {name} must be >= 0 (0 = no throttle), got {value!r}")
            return rate
    return DOCUMENTED_REQUESTS_PER_SECOND


def _list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _accounts(cfg: SourceConfig) -> Any:
    accounts = (cfg.extra or {}).get("accounts")
    if isinstance(accounts, str):
        accounts = json.loads(accounts) if accounts[:1] in "[{" else accounts.split(",")
    return accounts


def units(cfg: SourceConfig) -> list[str]:
    """Account names: ``extra.accounts`` (a list of names, or a mapping name → URL or
    ``{"base_url", "token"}``), else ``["default"]`` — the connection host itself."""
    accounts = _accounts(cfg)
    if not accounts:
        return ["default"]
    return [str(a).strip() for a in accounts]


def _account(cfg: SourceConfig, unit: str) -> tuple[str, str | None]:
    """(base URL, access token) of one account."""
    accounts = _accounts(cfg)
    spec: Any = None
    if isinstance(accounts, dict):
        spec = accounts.get(unit)
    if unit == "default" and not spec:
        return cfg.base_url, cfg.password
    if isinstance(spec, dict):
        return str(spec.get("base_url") or _account_url(unit)).rstrip("/"), spec.get("token") or cfg.password
    return (str(spec).rstrip("/") if spec else _account_url(unit)), cfg.password


def _account_url(name: str) -> str:
    if "://" in name:
        return name.rstrip("/")
    return f"https://{name}" if "." in name else f"https://{name}.amocrm.ru"


# -- tokens ------------------------------------------------------------------------------------
class TokenStore:
    """Keeps the rotated OAuth pair in ``raw_meta.extract_state`` (key ``oauth``).

    A refresh token works once, so losing the rotated one locks the connector out: a pair
    received while a batch transaction is open is written as soon as the connection is idle
    (after that batch commits or rolls back), never inside a transaction that may roll back.
    The pair is tied to the connection's refresh token (``seed``): when an administrator puts a
    new one in the connection, the stored pair is ignored.
    """

    KEY = "oauth"

    def __init__(self, conn, unit: str, seed: str | None):
        self.conn, self.unit, self.seed = conn, unit, seed
        self.pending: dict[str, str] | None = None

    def load(self) -> dict[str, str] | None:
        with self.conn.transaction():
            saved = get_state(self.conn, SOURCE, self.unit, self.KEY)
        if saved and saved.get("seed") == self.seed:
            return saved
        return None

    def save(self, access_token: str, refresh_token: str) -> None:
        self.pending = {"access_token": access_token, "refresh_token": refresh_token, "seed": self.seed or ""}
        self.flush()

    def flush(self, force: bool = False) -> None:
        if self.pending is None:
            return
        idle = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        if not (idle or force):
            return
        with self.conn.transaction():
            set_state(self.conn, SOURCE, self.unit, self.KEY, self.pending)
        self.pending = None


# -- records -----------------------------------------------------------------------------------
def _unix(value: Any) -> dt.datetime:
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str):
        value = float(value.strip())
    if not isinstance(value, int | float):
        raise ValueError(value)
    return dt.datetime.fromtimestamp(value, UTC)


BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


_encode = msgspec.json.Encoder().encode


def record_text(item: dict) -> str:
    """The ``record`` jsonb of an item decoded from strict JSON, as JSON text: msgspec writes what
    ``loading.batch._dumps`` would (the same jsonb value; only a float's exponent may be spelt
    ``1e16`` instead of ``1e+16``, which jsonb reads as the same number), several times faster,
    and COPY takes the text as it is instead of serialising a Jsonb wrapper per row. ``\u0000`` is
    kept visibly as ``_dumps`` does (jsonb refuses the NUL escape)."""
    return keep_nul_visible(_encode(item).decode("utf-8"))


def to_row(ent: Entity, account: str, item: Any, deleted: bool = False, strict: bool = False) -> tuple:
    """The raw-table row of one API object, or :class:`Rejected` with the reason. ``strict``: the
    item came from a strict-JSON body (no NaN/inf/lone surrogates), so its record is serialised
    here once (:func:`record_text`); else it stays a dict for the loader's own jsonb path."""
    if not isinstance(item, dict):
        raise Rejected(f"not a JSON object ({type(item).__name__})")
    raw_id = item.get("id")
    if raw_id is None or raw_id == "" or isinstance(raw_id, bool | dict | list):
        raise Rejected("no id")
    if ent.id_text:
        key: Any = str(raw_id)
    else:
        try:
            key = int(raw_id)
        except (TypeError, ValueError, OverflowError):  # 1e999 in JSON is infinity
            raise Rejected(f"id is not an integer: {raw_id!r}") from None
        if not BIGINT_MIN <= key <= BIGINT_MAX:  # else COPY would fail the whole batch, not this record
            raise Rejected(f"id out of the bigint range: {raw_id!r}")
    updated = None
    if ent.version_field:
        value = item.get(ent.version_field)
        if value is None and ent.filter_field:
            raise Rejected(f"no {ent.version_field}")
        if value is not None:
            try:
                updated = _unix(value)
            except (TypeError, ValueError, OverflowError, OSError):
                raise Rejected(f"unparseable {ent.version_field}: {value!r}") from None
    row: list[Any] = [account]
    if ent.entity_type:
        row.append(ent.entity_type)
    row += [key, updated]
    if ent.table == "leads":
        row.append(deleted)
    row.append(record_text(item) if strict else item)
    return tuple(row)


def copy_line(row: tuple) -> str:
    """A :func:`to_row` row as one COPY text line (without the load metadata or newline)."""
    return "\t".join(map(copy_text_value, row))


class Landing:
    """Validates, buffers and upserts one batch's records; collects what the ledger reports.

    Rows are buffered as COPY text lines (:func:`copy_line`) and upserted with
    ``RawBatch.upsert_text``: formatting a line here is cheaper than psycopg's per-value
    ``write_row`` of the same tuple."""

    def __init__(self, batch: RawBatch, ent: Entity, account: str):
        self.batch, self.ent, self.account = batch, ent, account
        self.table = raw_table(ent)
        self.columns = self.table.column_names
        self.rows: list[str] = []
        self.keys: set[str] = set()
        self.field_ids: set[int] = set()
        self.deleted_lead_ids: set[int] = set()

    def add(self, item: Any, *, part: str, number: int, deleted: bool = False, strict: bool = False) -> None:
        self.batch.read()
        try:
            row = to_row(self.ent, self.account, item, deleted, strict)
        except Rejected as why:
            raw = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, default=str)
            self.batch.quarantine(str(why), raw, row_number=number, source_part=part)
            return
        self.keys.update(item)
        for cf in item.get("custom_fields_values") or []:
            if isinstance(cf, dict) and isinstance(cf.get("field_id"), int):
                self.field_ids.add(cf["field_id"])
        if item.get("type") == "lead_deleted" and item.get("entity_type") == "lead":
            try:
                self.deleted_lead_ids.add(int(item["entity_id"]))
            except (KeyError, TypeError, ValueError):
                pass
        self.rows.append(copy_line(row))
        if len(self.rows) >= FLUSH_ROWS:
            self.flush(part)

    def flush(self, part: str | None = None) -> None:
        if self.rows:
            self.batch.upsert_text(self.table, self.columns, self.rows, source_part=part)
            self.rows = []

    def finish(self, conn) -> None:
        self.flush()
        detail = self.batch.detail
        if self.field_ids and self.ent.group in ENTITY_TYPES:
            known = _known_field_ids(conn, self.account, self.ent.group)
            detail["custom_fields_seen"] = len(self.field_ids)
            unknown = sorted(self.field_ids - known)
            if unknown:
                detail["custom_fields_unknown"] = unknown[:200]
                log.warning("amocrm[%s] %s: %d custom fields without a definition: %s", self.account,
                            self.ent.name, len(unknown), unknown[:20])
        if self.keys:
            state_key = f"fields:{self.ent.name}"
            before = get_state(conn, SOURCE, self.account, state_key)
            if before is not None:
                new = sorted(self.keys - set(before))
                if new:
                    detail["new_top_level_fields"] = new
                    log.warning("amocrm[%s] %s: new top-level fields %s", self.account, self.ent.name, new)
            set_state(conn, SOURCE, self.account, state_key, sorted(self.keys | set(before or ())))
        if self.deleted_lead_ids:
            detail["leads_flagged_deleted"] = _flag_deleted_leads(conn, self.account, self.deleted_lead_ids)


def _known_field_ids(conn, account: str, entity_type: str) -> set[int]:
    if conn.execute("select to_regclass('raw_amocrm.custom_fields')").fetchone()[0] is None:
        return set()
    rows = conn.execute("select id from raw_amocrm.custom_fields where account = %s and entity_type = %s",
                        (account, entity_type)).fetchall()
    return {r[0] for r in rows}


def _flag_deleted_leads(conn, account: str, ids: set[int]) -> int:
    if conn.execute("select to_regclass('raw_amocrm.leads')").fetchone()[0] is None:
        return 0
    cur = conn.execute("update raw_amocrm.leads set is_deleted = true where account = %s and id = any(%s) "
                       "and not is_deleted", (account, sorted(ids)))
    return cur.rowcount


# -- windows -----------------------------------------------------------------------------------
def month_chunks(start: dt.datetime, end: dt.datetime, tz: str) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at the first of each month in the business time zone."""
    zone = ZoneInfo(tz)
    chunks = []
    cur = start
    while cur < end:
        local = cur.astimezone(zone).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = min((local + dt.timedelta(days=32)).replace(day=1), end)
        chunks.append((cur, nxt))
        cur = nxt
    return chunks


def _iso(t: dt.datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _resumable(saved: dict | None, end: dt.datetime, full: bool) -> bool:
    """Continue a saved history load: a retry of the same window, or — unless a full reload was
    asked for — a later window arriving before the unfinished history was completed."""
    if not saved:
        return False
    if saved.get("target") == _iso(end):
        return True
    unfinished = dt.datetime.fromisoformat(saved["cursor"]) < dt.datetime.fromisoformat(saved["target"])
    return unfinished and not full


@dataclass
class Run:
    """One account's extract: client, settings, window and warehouse connection."""

    conn: Any
    client: AmoClient
    settings: Settings
    account: str
    window: Window
    tokens: TokenStore
    results: list[BatchResult] = field(default_factory=list)

    def state(self, key: str) -> Any:
        with self.conn.transaction():
            return get_state(self.conn, SOURCE, self.account, key)

    def items(self, ent: Entity, params: dict[str, Any]) -> Iterator[tuple[str, int, Any, bool]]:
        """(source part, row number, item, strict) of every page of a list (``strict``: the page
        was strict JSON, see :func:`to_row`)."""
        limit = min(self.settings.page_limit, ent.limit)
        n = 0
        for page in self.client.pages(ent.path, ent.embedded, params, limit=limit):
            part = f"{ent.path}?page={page.number}"
            strict = page.strict
            for item in page.items:
                n += 1
                yield part, n, item, strict

    def batch(self, ent: Entity, interval, mode: str, body, detail: dict | None = None) -> BatchResult:
        """Run ``body(landing)`` inside one RawBatch; the table exists before the first row."""
        try:
            with RawBatch(self.conn, SOURCE, ent.name, unit=self.account, interval=interval, mode=mode,
                          detail=detail) as b:
                landing = Landing(b, ent, self.account)
                landing.table.ensure(self.conn)
                body(landing)
                landing.finish(self.conn)
        finally:
            self.tokens.flush()
        self.results.append(b.result)
        return b.result

    # -- reference lists -----------------------------------------------------------------------
    def load_reference(self, ent: Entity) -> None:
        def body(landing: Landing) -> None:
            for part, n, item, strict in self.items(ent, {}):
                landing.add(item, part=part, number=n, strict=strict)

        self.batch(ent, (None, self.window.end), "snapshot", body)

    # -- changing lists ------------------------------------------------------------------------
    def load_changes(self, ent: Entity) -> None:
        end = self.window.end
        hwm_raw = self.state(f"hwm:{ent.name}")
        if hwm_raw and not self.window.full:
            hwm = dt.datetime.fromisoformat(hwm_raw)
            start = min(hwm, self.window.start) - self.settings.lookback
            for a, b in month_chunks(start, end, self.window.tz) or [(start, end)]:
                self.load_chunk(ent, a, b, "incremental", progress=None, new_hwm=max(hwm, b))
            return
        self.load_history(ent)

    def load_history(self, ent: Entity) -> None:
        end = self.window.end
        key = f"history:{ent.name}"
        saved = self.state(key)
        if _resumable(saved, end, self.window.full):
            cursor = dt.datetime.fromisoformat(saved["cursor"])
            log.info("amocrm[%s] %s: resuming history at %s", self.account, ent.name, cursor)
        else:
            cursor = self.history_start(ent)
            if cursor is None:  # nothing in the account yet
                with self.conn.transaction():
                    set_state(self.conn, SOURCE, self.account, f"hwm:{ent.name}", _iso(end))
                return
            with self.conn.transaction():
                set_state(self.conn, SOURCE, self.account, key, {"target": _iso(end), "cursor": _iso(cursor)})
        chunks = month_chunks(cursor, end, self.window.tz)
        if not chunks:  # history starts after this window: nothing to pull, later runs go on from here
            with self.conn.transaction():
                set_state(self.conn, SOURCE, self.account, f"hwm:{ent.name}", _iso(end))
            return
        for i, (a, b) in enumerate(chunks, 1):
            self.load_chunk(ent, a, b, "history", progress=(key, i, len(chunks)), new_hwm=end if b >= end else None)

    def history_start(self, ent: Entity) -> dt.datetime | None:
        """``extra.start_date``, else the oldest record's time (one small request per list)."""
        if self.settings.start_date:
            zone = ZoneInfo(self.window.tz)
            return dt.datetime.combine(self.settings.start_date, dt.time(), zone)
        found = []
        for params in self._variants(ent):
            status, data = self.client.get(ent.path, {**params, f"order[{ent.filter_field}]": "asc",
                                                      "page": 1, "limit": 10})
            items = ((data or {}).get("_embedded") or {}).get(ent.embedded) or [] if status == 200 else []
            for item in items:
                try:
                    found.append(_unix(item[ent.filter_field]))
                    break
                except (TypeError, KeyError, ValueError, OverflowError, OSError):
                    continue
        if not found:
            return None
        return min(found).replace(second=0, microsecond=0)

    @staticmethod
    def _variants(ent: Entity) -> list[dict[str, Any]]:
        """Leads come as two lists: the live ones and ``with=only_deleted``."""
        return [{}, {"with": "only_deleted"}] if ent.name == "leads" else [{}]

    def load_chunk(self, ent: Entity, a: dt.datetime, b: dt.datetime, mode: str, *, progress, new_hwm) -> None:
        f = ent.filter_field
        params = {f"filter[{f}][from]": int(a.timestamp()), f"filter[{f}][to]": int(b.timestamp()),
                  f"order[{f}]": "asc"}

        def body(landing: Landing) -> None:
            for extra in self._variants(ent):
                deleted = bool(extra)
                suffix = " deleted" if deleted else ""
                for part, n, item, strict in self.items(ent, {**params, **extra}):
                    landing.add(item, part=part + suffix, number=n, deleted=deleted, strict=strict)
            if progress:
                key, _, _ = progress
                set_state(self.conn, SOURCE, self.account, key, {"target": _iso(self.window.end), "cursor": _iso(b)})
            if new_hwm is not None:
                set_state(self.conn, SOURCE, self.account, f"hwm:{ent.name}", _iso(new_hwm))

        result = self.batch(ent, (a, b), mode, body)
        if progress:
            _, i, total = progress
            log.info("amocrm[%s] %s history %d/%d (%s … %s): %d rows", self.account, ent.name, i, total,
                     a.date(), b.date(), result.rows_read)


def extract_load(cfg: SourceConfig, unit: str, window: Window, conn) -> list[BatchResult]:
    """Pull one account for ``window`` (history on the first run) into ``raw_amocrm``."""
    settings = Settings.from_config(cfg, unit)
    tokens = TokenStore(conn, unit, settings.oauth.refresh_token if settings.oauth else None)
    saved = tokens.load() if settings.oauth else None
    token = settings.token
    if saved:
        token = saved["access_token"]
        settings.oauth.refresh_token = saved["refresh_token"]
    if not token and not settings.oauth:
        raise ValueError(f"amocrm connection {cfg.conn_id}: no access token (password) and no OAuth credentials")
    client = AmoClient(settings.base_url, token, oauth=settings.oauth, on_tokens=tokens.save,
                       rate_limit=settings.rate_limit, max_retries=settings.max_retries,
                       backoff_base=settings.backoff_base, timeout=settings.timeout)
    run = Run(conn, client, settings, unit, window, tokens)
    wanted = settings.only
    try:
        for ent in all_entities(settings.note_types, settings.field_types):
            if wanted and ent.group not in wanted and ent.name not in wanted:
                continue
            if ent.filter_field is None:
                run.load_reference(ent)
            else:
                run.load_changes(ent)
    finally:
        tokens.flush(force=True)
        client.close()
    log.info("amocrm[%s]: %d batches, %d requests", unit, len(run.results), client.requests_made)
    return run.results


