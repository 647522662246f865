"""Bitrix24 → ``raw_bitrix24``: what to pull, in which windows, and how it lands.

* Reference lists — deal stages (``crm.status.list``, ``ENTITY_ID=DEAL_STAGE`` and any
  ``DEAL_STAGE_<category>`` listed in ``extra.deal_categories``) and deal custom-field definitions
  (``crm.deal.userfield.list``) — come whole every run in **one** ``batch`` call; rows no longer
  listed are flagged ``is_deleted``.
* Deals, contacts, companies, activities:
  - **history** (no high-water mark, or ``window.full``): every record (modified since
    ``extra.start_date`` when given) through the fast ID cursor, 50 pages (2,500 rows) per
    ``batch`` request chained with ``$result[…][49][ID]`` (``Bitrix24Client.id_walk``),
    committed every ``history_batch_rows`` rows together with the last ID, so a crash resumes after
    the last committed ID and a retry of the same window continues instead of starting over;
  - **incremental**: ``>=DATE_MODIFY`` (activities: ``LAST_UPDATED``) from
    ``min(high-water mark, window.start) − lookback_days`` to ``window.end``, by ``start``/``next``
    paging with the pages after the first fetched in batches (``extra.paging = "cursor"`` switches
    to the chained ID cursor). Upserts keep the newest ``DATE_MODIFY``, so the same window twice gives
    identical tables.
* Deleted records are not listed by Bitrix24: after each load of deals, contacts and companies
  every ID (``select: [ID]``, the same chained walk) is streamed page by page into a temporary
  table (COPY, :class:`ListedIds`) and compared with the table by anti-joins; IDs gone from the
  portal get ``is_deleted = true`` (and back to false if they reappear). A listing that would flag
  more than ``max_deleted_share`` (half) of the live records is refused and reported instead: a
  lost page must not read as a mass deletion. The loader never holds the IDs of a whole list, so
  its memory does not grow with the portal's history.

Records that are not objects, lack an integer ``ID`` or have an unreadable ``DATE_MODIFY`` are
quarantined with the reason. The ledger detail reports ``UF_*`` fields with no definition in
``raw_bitrix24.deal_userfields`` and top-level fields not seen before.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import sql

from ...connections import SourceConfig
from ...loading import BatchResult, Column, RawBatch, RawTable, get_state, set_state
from .. import Window
from .client import Bitrix24Client, Page

log = logging.getLogger(__name__)

SOURCE = "bitrix24"
SCHEMA = "raw_bitrix24"
FLUSH_ROWS = 2_000
ALL_FIELDS = ["*", "UF_*"]


class Rejected(ValueError):
    """A record that cannot be landed; the message is the quarantine reason."""


@dataclass(frozen=True)
class Entity:
    name: str
    method: str
    version_field: str | None = "DATE_MODIFY"
    select: tuple[str, ...] = tuple(ALL_FIELDS)
    reference: bool = False

    @property
    def table(self) -> str:
        return self.name


ENTITIES = (
    Entity("deal_stages", "crm.status.list", None, ("*",), reference=True),
    Entity("deal_userfields", "crm.deal.userfield.list", None, ("*",), reference=True),
    Entity("deals", "crm.deal.list"),
    Entity("contacts", "crm.contact.list"),
    Entity("companies", "crm.company.list"),
    Entity("activities", "crm.activity.list", "LAST_UPDATED", ("*",)),
)


def raw_table(ent: Entity) -> RawTable:
    """``raw_bitrix24.<entity>``: key ``(portal, id)`` (stages: ``(portal, entity_id, status_id)``)."""
    cols = [Column("portal", "text")]
    key: tuple[str, ...] = ("portal", "id")
    if ent.name == "deal_stages":
        cols += [Column("entity_id", "text"), Column("status_id", "text")]
        key = ("portal", "entity_id", "status_id")
    cols += [Column("id", "bigint"), Column("updated_at", "timestamptz"),
             Column("is_deleted", "boolean not null default false"), Column("record", "jsonb not null")]
    return RawTable(SCHEMA, ent.table, cols, key=key, version_column="updated_at")


# -- settings ----------------------------------------------------------------------------------
def _list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() in ("1", "true", "yes", "on")


def _first(extra: dict, *names: str, default: Any) -> Any:
    """The first of ``names`` set in ``extra`` (newer spelling first), else ``default``."""
    for name in names:
        if extra.get(name) not in (None, ""):
            return extra[name]
    return default


def _portals(cfg: SourceConfig) -> Any:
    portals = (cfg.extra or {}).get("portals")
    if isinstance(portals, str):
        portals = json.loads(portals) if portals[:1] in "[{" else portals.split(",")
    return portals


def units(cfg: SourceConfig) -> list[str]:
    """Portal names: ``extra.portals`` (a list, or a mapping name → webhook URL), else ``["default"]``."""
    portals = _portals(cfg)
    return [str(p).strip() for p in portals] if portals else ["default"]


def webhook_url(cfg: SourceConfig, unit: str = "default") -> str:
    """The incoming-webhook base ``https://portal/rest/<user>/<secret>`` of one portal.

    The connection host may carry the whole webhook; in URI form the path lands in ``schema`` and
    is put back. When the path stops at ``/rest/<user>`` or has no ``/rest/`` at all, the secret is
    the connection password and the user id the login (default 1), so the secret can live in the
    password field where Airflow masks it.
    """
    portals = _portals(cfg)
    spec = portals.get(unit) if isinstance(portals, dict) else None
    if spec:
        base = str(spec)
    elif unit == "default":
        base = cfg.base_url
        if cfg.schema and "/rest/" not in base + "/":
            base = f"{base}/{cfg.schema.strip('/')}"
    else:
        base = unit if "://" in unit else f"https://{unit if '.' in unit else unit + '.bitrix24.ru'}"
    base = base.rstrip("/")
    head, sep, tail = base.partition("/rest/")
    if not sep and base.endswith("/rest"):
        head, sep, tail = base[:-5], "/rest/", ""
    parts = [p for p in tail.split("/") if p] if sep else []
    if len(parts) >= 2:
        return base
    if not cfg.password:
        raise ValueError(f"bitrix24 connection {cfg.conn_id}: webhook URL {base!r} has no secret and the "
                         "connection has no password to supply it")
    user = parts[0] if parts else (cfg.login or "1")
    return f"{head}/rest/{user}/{cfg.password}"


@dataclass
class Settings:
    lookback: dt.timedelta
    paging: str
    history_batch_rows: int
    detect_deleted: set[str]
    stage_entities: list[str]
    only: set[str]
    client: dict[str, Any]
    start_date: dt.date | None = None
    max_deleted_share: float = 0.5

    @classmethod
    def from_config(cls, cfg: SourceConfig) -> Settings:
        x = cfg.extra or {}
        return cls(
            lookback=dt.timedelta(days=float(x.get("lookback_days", 2))),
            paging=str(x.get("paging", "offset")),
            history_batch_rows=int(x.get("history_batch_rows", 5000)),
            detect_deleted=set(_list(x.get("detect_deleted")) or ["deals", "contacts", "companies"]),
            stage_entities=["DEAL_STAGE", *(f"DEAL_STAGE_{c}" for c in _list(x.get("deal_categories")))],
            only=set(_list(x.get("entities"))),
            client={"capacity": float(_first(x, "burst", "bucket_size", default=50)),
                    "drain_rate": float(_first(x, "requests_per_second", "drain_rate", default=2)),
                    "max_retries": int(x.get("max_retries", 6)), "backoff_base": float(x.get("backoff_base", 1.0)),
                    "timeout": float(x.get("timeout", 30)),
                    "batch_timeout": float(x.get("batch_timeout") or 0) or None, "use_batch": _bool(x.get("use_batch"), True),
                    "chain_pages": int(x.get("chain_pages", 50))},
            start_date=dt.date.fromisoformat(str(x["start_date"])[:10]) if x.get("start_date") else None,
            max_deleted_share=float(x.get("max_deleted_share", 0.5)),
        )


# -- records -----------------------------------------------------------------------------------
def _parse_time(value: Any, tz: str) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError(value)
    t = dt.datetime.fromisoformat(value.strip())
    return t if t.tzinfo else t.replace(tzinfo=ZoneInfo(tz))


BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


def to_row(ent: Entity, portal: str, item: Any, tz: str) -> tuple:
    """The raw-table row of one REST result row, or :class:`Rejected` with the reason."""
    if not isinstance(item, dict):
        raise Rejected(f"not a JSON object ({type(item).__name__})")
    raw_id = item.get("ID")
    if raw_id is None or raw_id == "" or isinstance(raw_id, bool | dict | list):
        raise Rejected("no ID")
    try:
        key = int(raw_id)
    except (TypeError, ValueError, OverflowError):  # 1e999 in JSON is infinity
        raise Rejected(f"ID is not an integer: {raw_id!r}") from None
    if not BIGINT_MIN <= key <= BIGINT_MAX:  # else COPY would fail the whole batch, not this record
        raise Rejected(f"ID out of the bigint range: {raw_id!r}")
    updated = None
    if ent.version_field:
        value = item.get(ent.version_field)
        if value in (None, ""):
            raise Rejected(f"no {ent.version_field}")
        try:
            updated = _parse_time(value, tz)
        except (TypeError, ValueError):
            raise Rejected(f"unparseable {ent.version_field}: {value!r}") from None
    row: list[Any] = [portal]
    if ent.name == "deal_stages":
        if not item.get("ENTITY_ID") or not item.get("STATUS_ID"):
            raise Rejected("no ENTITY_ID/STATUS_ID")
        row += [str(item["ENTITY_ID"]), str(item["STATUS_ID"])]
    return (*row, key, updated, False, item)


class Landing:
    """Validates, buffers and upserts one batch's rows; collects what the ledger reports."""

    def __init__(self, batch: RawBatch, ent: Entity, portal: str, tz: str):
        self.batch, self.ent, self.portal, self.tz = batch, ent, portal, tz
        self.table = raw_table(ent)
        self.columns = self.table.column_names
        self.rows: list[tuple] = []
        self.keys: set[str] = set()  # top-level field names: bounded by the schema, not the rows
        # IDs landed: all of them only for the (small) reference lists, which flag what they miss;
        # a changing list needs just the highest (history resumes after it)
        self.ids: set[int] | None = set() if ent.reference else None
        self.max_id: int | None = None
        self._id_at = self.columns.index("id")

    def add_page(self, page: Page) -> None:
        for n, item in enumerate(page.rows, 1):
            self.add(item, part=page.part, number=n)

    def add(self, item: Any, *, part: str, number: int) -> None:
        self.batch.read()
        try:
            row = to_row(self.ent, self.portal, item, self.tz)
        except Rejected as why:
            raw = item if isinstance(item, str) else json.dumps(item, ensure_ascii=False, default=str)
            self.batch.quarantine(str(why), raw, row_number=number, source_part=part)
            return
        self.keys.update(item)
        key = row[self._id_at]
        if self.ids is not None:
            self.ids.add(key)
        if self.max_id is None or key > self.max_id:
            self.max_id = key
        self.rows.append(row)
        if len(self.rows) >= FLUSH_ROWS:
            self.flush(part)

    def flush(self, part: str | None = None) -> None:
        if self.rows:
            self.batch.upsert_rows(self.table, self.columns, self.rows, source_part=part)
            self.rows = []

    def finish(self, conn) -> None:
        self.flush()
        detail = self.batch.detail
        if self.ent.name == "deals":
            fields = {k for k in self.keys if k.startswith("UF_")}
            known = _known_userfields(conn, self.portal)
            detail["userfields_seen"] = len(fields)
            unknown = sorted(fields - known) if known else []
            if unknown:
                detail["userfields_unknown"] = unknown
                log.warning("bitrix24[%s] deals: custom fields without a definition: %s", self.portal, unknown)
        if self.keys:
            state_key = f"fields:{self.ent.name}"
            before = get_state(conn, SOURCE, self.portal, state_key)
            if before is not None and (new := sorted(self.keys - set(before))):
                detail["new_top_level_fields"] = new
                log.warning("bitrix24[%s] %s: new top-level fields %s", self.portal, self.ent.name, new)
            set_state(conn, SOURCE, self.portal, state_key, sorted(self.keys | set(before or ())))


def _known_userfields(conn, portal: str) -> set[str]:
    if conn.execute("select to_regclass('raw_bitrix24.deal_userfields')").fetchone()[0] is None:
        return set()
    rows = conn.execute("select record->>'FIELD_NAME' from raw_bitrix24.deal_userfields where portal = %s "
                        "and not is_deleted", (portal,)).fetchall()
    return {r[0] for r in rows if r[0]}


class ListedIds:
    """The IDs a portal lists, streamed into a temporary table (``pg_temp.b24_listed_ids``) by COPY
    in chunks of ``chunk`` IDs, so the deletion scan holds one chunk, never the whole list.

    Use inside the batch's transaction: ``with ListedIds(conn) as listed: listed.add(ids); …``.
    The table is dropped on leaving; if the transaction fails, its rollback drops it. IDs a bigint
    column cannot hold (their records were quarantined, never stored) are not staged, only counted
    (there are few). ``count()`` is the number of distinct IDs listed, as ``len(set(…))`` was."""

    TABLE = "b24_listed_ids"
    CHUNK = 10_000

    def __init__(self, conn, chunk: int | None = None):
        self.conn, self.chunk = conn, chunk or self.CHUNK
        self._buf: list[int] = []
        self._outside: set[int] = set()
        self._count: int | None = None

    def __enter__(self) -> ListedIds:
        self.conn.execute(f"drop table if exists pg_temp.{self.TABLE}")
        self.conn.execute(f"create temp table {self.TABLE} (id bigint not null)")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.conn.execute(f"drop table if exists pg_temp.{self.TABLE}")
        return False  # on an error the transaction is rolled back, and the table with it

    def add(self, ids: Iterable[int]) -> None:
        for i in ids:
            if BIGINT_MIN <= i <= BIGINT_MAX:
                self._buf.append(i)
                if len(self._buf) >= self.chunk:
                    self._flush()
            else:
                self._outside.add(i)

    def _flush(self) -> None:
        if self._buf:
            with self.conn.cursor() as cur, cur.copy(f"copy pg_temp.{self.TABLE} (id) from stdin") as cp:
                cp.write("".join(f"{i}\n" for i in self._buf))
            self._buf.clear()
        self._count = None

    def done(self) -> ListedIds:
        """Every ID is in: flush, and give the planner the table's size (temp tables get no autovacuum)."""
        self._flush()
        self.conn.execute(f"analyze pg_temp.{self.TABLE}")
        return self

    def count(self) -> int:
        if self._count is None:
            self._flush()
            n = self.conn.execute(f"select count(distinct id) from pg_temp.{self.TABLE}").fetchone()[0]
            self._count = n + len(self._outside)
        return self._count


@contextlib.contextmanager
def _staged(conn, listed: Iterable[int] | ListedIds) -> Iterator[ListedIds]:
    """``listed`` as a filled :class:`ListedIds`: the one given, or a new one for the iterable."""
    if isinstance(listed, ListedIds):
        yield listed
        return
    with ListedIds(conn) as staged:
        staged.add(listed)
        yield staged.done()


def would_delete(conn, table: RawTable, portal: str, listed: Iterable[int] | ListedIds) -> tuple[int, int]:
    """(rows that would be flagged deleted, live rows) — for the mass-deletion guard. ``listed``:
    the listed IDs (any iterable; staged into a temporary table) or a filled :class:`ListedIds`."""
    target = sql.Identifier(SCHEMA, table.name)
    with _staged(conn, listed):
        # a hash anti-join on the staged IDs (deduplicated), not ``id <> all(array)``: that compares
        # every row with every listed ID (40,000 × 40,000 took 1.8 s; quadratic beyond)
        row = conn.execute(sql.SQL("select count(*) filter (where l.id is null), count(*) from {} as t "
                                   "left join (select distinct id from pg_temp.{}) as l on l.id = t.id "
                                   "where t.portal = %s and not t.is_deleted")
                           .format(target, sql.Identifier(ListedIds.TABLE)), (portal,)).fetchone()
    return row[0], row[1]


def mark_deleted(conn, table: RawTable, portal: str, listed: Iterable[int] | ListedIds,
                 batch_id: str | None = None) -> tuple[int, int]:
    """Flag rows whose id the portal no longer lists; unflag those listed again. (flagged, restored)
    ``listed`` as for :func:`would_delete`.

    A changed row is stamped with the scan's batch (``_batch_id``, and ``_loaded_at`` = the batch
    transaction's now(), its ledger finished_at): the flag is new data, and the incremental dbt
    models find new data by its batch — an unstamped flag would stay invisible to them."""
    target = sql.Identifier(SCHEMA, table.name)
    stamp = sql.SQL(", _loaded_at = now(), _batch_id = {}").format(sql.Literal(batch_id)) if batch_id else sql.SQL("")
    with _staged(conn, listed):
        staged = sql.Identifier(ListedIds.TABLE)
        flagged = conn.execute(sql.SQL("update {} as t set is_deleted = true{} where t.portal = %s and not t.is_deleted "
                                       "and not exists (select from pg_temp.{} as l where l.id = t.id)")
                               .format(target, stamp, staged), (portal,)).rowcount
        restored = conn.execute(sql.SQL("update {} as t set is_deleted = false{} where t.portal = %s and t.is_deleted "
                                        "and exists (select from pg_temp.{} as l where l.id = t.id)")
                                .format(target, stamp, staged), (portal,)).rowcount
    return flagged, restored


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat()


@dataclass
class Run:
    conn: Any
    client: Bitrix24Client
    settings: Settings
    portal: str
    window: Window
    results: list[BatchResult] = field(default_factory=list)

    def state(self, key: str) -> Any:
        with self.conn.transaction():
            return get_state(self.conn, SOURCE, self.portal, key)

    def batch(self, ent: Entity, interval, mode: str, body) -> BatchResult:
        with RawBatch(self.conn, SOURCE, ent.name, unit=self.portal, interval=interval, mode=mode) as b:
            landing = Landing(b, ent, self.portal, self.window.tz)
            landing.table.ensure(self.conn)
            body(landing)
            landing.finish(self.conn)
        self.results.append(b.result)
        return b.result

    # -- reference lists -----------------------------------------------------------------------
    def load_references(self, ents: list[Entity]) -> None:
        """Stages of every pipeline and the deal custom fields: one batch call for all first pages."""
        cmds: dict[str, tuple[str, dict[str, Any]]] = {}
        for ent in ents:
            if ent.name == "deal_stages":
                for code in self.settings.stage_entities:
                    cmds[f"stages:{code}"] = (ent.method, {"filter": {"ENTITY_ID": code}, "order": {"SORT": "ASC"}})
            else:
                cmds[ent.name] = (ent.method, {"order": {"ID": "ASC"}})
        if self.client.use_batch:
            answers = self.client.batch(cmds)
        else:
            answers = {k: self.client.call(m, {**p, "start": 0}) for k, (m, p) in cmds.items()}
        for ent in ents:
            keys = [k for k in cmds if k == ent.name or k.startswith("stages:") and ent.name == "deal_stages"]

            def body(landing: Landing, keys=keys) -> None:
                for key in keys:
                    method, params = cmds[key]
                    answer = answers[key]
                    landing.add_page(Page(f"{method} {key} start=0", list(answer.get("result") or [])))
                    nxt = answer.get("next")
                    while nxt is not None:  # rare: more than 50 stages or fields
                        more = self.client.call(method, {**params, "start": nxt})
                        landing.add_page(Page(f"{method} {key} start={nxt}", list(more.get("result") or [])))
                        nxt = more.get("next")
                landing.flush()
                flagged, restored = mark_deleted(self.conn, landing.table, self.portal, landing.ids,
                                                 landing.batch.batch_id)
                landing.batch.detail.update(flagged_deleted=flagged, restored=restored)

            self.batch(ent, (None, self.window.end), "snapshot", body)

    # -- changing lists ------------------------------------------------------------------------
    def load_changes(self, ent: Entity) -> None:
        hwm_raw = self.state(f"hwm:{ent.name}")
        if hwm_raw and not self.window.full:
            self.load_incremental(ent, dt.datetime.fromisoformat(hwm_raw))
        else:
            self.load_history(ent)

    def load_incremental(self, ent: Entity, hwm: dt.datetime) -> None:
        start = min(hwm, self.window.start) - self.settings.lookback
        end = self.window.end
        f = ent.version_field
        params = {"filter": {f">={f}": _iso(start), f"<={f}": _iso(end)}, "select": list(ent.select)}

        def body(landing: Landing) -> None:
            if self.settings.paging == "cursor":
                pages = self.client.id_walk(ent.method, params)
            else:
                pages = self.client.offset_pages(ent.method, {**params, "order": {"ID": "ASC"}})
            for page in pages:
                landing.add_page(page)
            self.after_complete(ent, landing)
            set_state(self.conn, SOURCE, self.portal, f"hwm:{ent.name}", _iso(max(hwm, end)))

        self.batch(ent, (start, end), "incremental", body)

    def load_history(self, ent: Entity) -> None:
        key = f"history:{ent.name}"
        target = _iso(self.window.end)
        saved = self.state(key) or {}
        same_window = saved.get("target") == target
        if same_window and saved.get("done"):
            log.info("bitrix24[%s] %s: history for this window already complete", self.portal, ent.name)
            return
        # a retry of the same window, or a later window before the unfinished history completed
        # (unless a full reload was asked for), continues after the last committed ID
        resume = bool(saved) and not saved.get("done") and (same_window or not self.window.full)
        last_id = int(saved["last_id"]) if resume else 0
        if last_id:
            log.info("bitrix24[%s] %s: resuming history after ID %d", self.portal, ent.name, last_id)
        params: dict[str, Any] = {"select": list(ent.select)}
        if self.settings.start_date:
            since = dt.datetime.combine(self.settings.start_date, dt.time(), ZoneInfo(self.window.tz))
            params["filter"] = {f">={ent.version_field}": _iso(since)}
        pages = self.client.id_walk(ent.method, params, after_id=last_id)
        done = False
        chunk = 0
        while not done:
            chunk += 1

            def body(landing: Landing) -> None:
                nonlocal done, last_id
                for page in pages:
                    landing.add_page(page)
                    if landing.batch.rows_read >= self.settings.history_batch_rows:
                        break
                else:
                    done = True
                if landing.max_id is not None:
                    last_id = max(last_id, landing.max_id)
                if done:
                    self.after_complete(ent, landing)
                    set_state(self.conn, SOURCE, self.portal, f"hwm:{ent.name}", target)
                set_state(self.conn, SOURCE, self.portal, key, {"target": target, "last_id": last_id, "done": done})

            result = self.batch(ent, (None, self.window.end), "history", body)
            log.info("bitrix24[%s] %s history chunk %d: %d rows, up to ID %d%s", self.portal, ent.name, chunk,
                     result.rows_read, last_id, " (complete)" if done else "")

    def after_complete(self, ent: Entity, landing: Landing) -> None:
        """Once a list is fully loaded: find records the portal no longer has."""
        if ent.name not in self.settings.detect_deleted:
            return
        landing.flush()
        with ListedIds(self.conn) as listed:  # page by page into a temporary table, never a set in memory
            for ids in self.client.id_pages(ent.method):
                listed.add(ids)
            listed.done()
            missing, live = would_delete(self.conn, landing.table, self.portal, listed)
            if missing > 10 and missing > self.settings.max_deleted_share * live:
                # an ID listing that lost pages would wipe live records: refuse, loudly, keep the load
                log.error("bitrix24[%s] %s: %d of %d records would be flagged deleted (> %.0f%%); not flagging — "
                          "check the portal, or raise extra.max_deleted_share for a real mass deletion",
                          self.portal, ent.name, missing, live, 100 * self.settings.max_deleted_share)
                landing.batch.detail.update(ids_listed=listed.count(),
                                            deletion_guard={"would_flag": missing, "live": live})
                return
            flagged, restored = mark_deleted(self.conn, landing.table, self.portal, listed, landing.batch.batch_id)
            landing.batch.detail.update(ids_listed=listed.count(), flagged_deleted=flagged, restored=restored)
        if flagged:
            log.info("bitrix24[%s] %s: %d records deleted in the portal", self.portal, ent.name, flagged)


def extract_load(cfg: SourceConfig, unit: str, window: Window, conn) -> list[BatchResult]:
    """Pull one portal for ``window`` (history on the first run) into ``raw_bitrix24``."""
    settings = Settings.from_config(cfg)
    client = Bitrix24Client(webhook_url(cfg, unit), **settings.client)
    run = Run(conn, client, settings, unit, window)
    wanted = settings.only
    chosen = [e for e in ENTITIES if not wanted or e.name in wanted]
    try:
        refs = [e for e in chosen if e.reference]
        if refs:
            run.load_references(refs)
        for ent in chosen:
            if not ent.reference:
                run.load_changes(ent)
    finally:
        client.close()
    log.info("bitrix24[%s]: %d batches, %d requests", unit, len(run.results), client.requests_made)
    return run.results
