"""CRM exports as files: ``orders``, ``customers``, ``interactions``, ``marketing_costs``.

For businesses whose customer base lives in Excel (docs/crm-file-format.md is the user-facing
description of the format). Each file is a full export, so each load replaces the table's
snapshot for that export folder (delete + COPY) in one transaction with its ledger row: a
half-read file never shows. Values are parsed from Russian-locale CSV/XLSX into typed columns;
the original row is kept whole in ``record`` (all columns as text) so nothing is lost to a
parser, and a row that cannot be trusted is quarantined with the reason and its raw text.

Connection: type ``fs``, ``extra.path`` (or host) = the folder. Units: ``default`` (the folder
itself) or, when the folder holds no ``orders`` file but sub-folders that do, one unit per
sub-folder (several stores or legal entities). Rows carry ``unit`` so snapshots of different
sub-folders never replace each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from ..loading import BatchResult, Column, RawBatch, RawTable, unchanged
from . import Window
from .parsing import (
    clean_text,
    normalize_email,
    normalize_header,
    normalize_phone,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_money,
)
from .tabular import Row, TabularError, TabularFile, parser_code

log = logging.getLogger(__name__)

SOURCE = "crm_files"
SCHEMA = "raw_crm_files"
EXTENSIONS = (".csv", ".xlsx", ".xlsm")


class CrmFileError(ValueError):
    """A file that cannot be loaded at all: the message names the file, the column and the format."""


@dataclass(frozen=True)
class Field:
    """One typed column: its canonical name, parser kind, whether it is required, header aliases."""

    name: str
    kind: str = "text"  # text | money | decimal | timestamp | date | email | phone
    required: bool = False
    aliases: tuple[str, ...] = ()
    default: str | None = None

    @property
    def sql_type(self) -> str:
        return {"money": "numeric(18,2)", "decimal": "numeric", "timestamp": "timestamptz",
                "date": "date"}.get(self.kind, "text")


@dataclass(frozen=True)
class Entity:
    name: str
    fields: tuple[Field, ...]
    key: str | None
    required_file: bool = False

    @property
    def table(self) -> RawTable:
        cols = [Column("unit", "text not null"), *(Column(f.name, f.sql_type) for f in self.fields),
                Column("record", "jsonb not null"), Column("row_number", "bigint not null")]
        return RawTable(SCHEMA, self.name, cols, indexes=(("unit",),))

    def expected(self) -> str:
        req = [f.name for f in self.fields if f.required]
        opt = [f.name for f in self.fields if not f.required]
        return f"required columns {', '.join(req)}; optional {', '.join(opt)}"


ENTITIES: tuple[Entity, ...] = (
    Entity("orders", (
        Field("order_id", required=True, aliases=("номер заказа", "№ заказа", "номер", "id заказа", "заказ")),
        Field("customer_id", required=True, aliases=("id клиента", "код клиента", "клиент id", "номер клиента")),
        Field("ordered_at", "timestamp", True, ("дата", "дата заказа", "date", "order date", "дата и время")),
        Field("amount", "money", True, ("сумма", "сумма заказа", "итого", "выручка")),
        Field("status", aliases=("статус", "статус заказа"), default="won"),
        Field("product", aliases=("товар", "продукт", "номенклатура")),
        Field("quantity", "decimal", aliases=("количество", "кол-во", "кол во", "qty")),
        Field("cost", "money", aliases=("себестоимость", "закупочная стоимость")),
        Field("manager", aliases=("менеджер", "ответственный")),
    ), key="order_id", required_file=True),
    Entity("customers", (
        Field("customer_id", required=True, aliases=("id клиента", "код клиента", "клиент id", "номер клиента")),
        Field("name", aliases=("имя", "фио", "наименование", "название", "клиент")),
        Field("email", "email", aliases=("e-mail", "почта", "электронная почта", "эл. почта")),
        Field("phone", "phone", aliases=("телефон", "тел", "тел.", "мобильный")),
        Field("city", aliases=("город",)),
        Field("type", aliases=("тип", "тип клиента")),
    ), key="customer_id"),
    Entity("interactions", (
        Field("interaction_id", required=True, aliases=("id взаимодействия", "номер", "id")),
        Field("customer_id", required=True, aliases=("id клиента", "код клиента", "клиент id", "номер клиента")),
        Field("occurred_at", "timestamp", True, ("дата", "дата и время", "date")),
        Field("channel", aliases=("канал",)),
        Field("kind", aliases=("тип", "вид", "тип взаимодействия")),
        Field("manager", aliases=("менеджер", "ответственный")),
        Field("note", aliases=("комментарий", "заметка", "примечание", "описание")),
    ), key="interaction_id"),
    Entity("marketing_costs", (
        Field("cost_date", "date", True, ("date", "дата")),
        Field("utm_source", aliases=("источник",)),
        Field("utm_medium", aliases=("канал", "тип трафика")),
        Field("utm_campaign", aliases=("кампания",)),
        Field("cost", "money", True, ("расход", "расходы", "стоимость", "затраты", "сумма")),
    ), key=None),  # several rows per day and campaign are legitimate (ad groups): summed downstream
)
ENTITY_BY_NAME = {e.name: e for e in ENTITIES}


# -- source module interface --------------------------------------------------------------------
def units(cfg) -> list[str]:
    """``["default"]``, or the sub-folders that hold an ``orders`` export."""
    root = _root(cfg)
    if _find_file(root, "orders") or not root.is_dir():
        return ["default"]
    subs = sorted(p.name for p in root.iterdir() if p.is_dir() and _find_file(p, "orders"))
    return subs or ["default"]


def extract_load(cfg, unit: str, window: Window, conn) -> list[BatchResult]:
    """Load every export file of ``unit``; files that fail are reported together at the end."""
    folder = _root(cfg) if unit == "default" else _root(cfg) / unit
    if not folder.is_dir():
        raise CrmFileError(f"CRM export folder {folder} does not exist (connection extra.path)")
    results, errors = [], []
    for entity in ENTITIES:
        try:
            path = _find_file(folder, entity.name)
        except CrmFileError as exc:
            errors.append(str(exc))
            continue
        if path is None:
            if entity.required_file:
                errors.append(f"{folder}: no {entity.name}.csv or {entity.name}.xlsx (required; "
                              f"{entity.expected()}; see docs/crm-file-format.md)")
            else:
                log.info("crm_files[%s]: optional %s export not present, skipped", unit, entity.name)
            continue
        try:
            results.append(load_file(conn, entity, path, unit=unit, window=window))
        except (CrmFileError, TabularError) as exc:
            log.error("crm_files[%s]: %s", unit, exc)
            errors.append(str(exc))
    if errors:
        raise CrmFileError("; ".join(errors))
    return results


def _root(cfg) -> Path:
    return Path(cfg.path).expanduser()


def _find_file(folder: Path, stem: str) -> Path | None:
    if not folder.is_dir():
        return None
    found = [p for p in folder.iterdir() if p.is_file() and p.stem.lower() == stem and p.suffix.lower() in EXTENSIONS]
    if len(found) > 1:
        names = ", ".join(sorted(p.name for p in found))
        raise CrmFileError(f"{folder}: both {names} present; keep one export of {stem}")
    return found[0] if found else None


# -- one file -----------------------------------------------------------------------------------
def load_file(conn, entity: Entity | str, path: str | Path, *, unit: str = "default",
              window: Window | None = None) -> BatchResult:
    """Replace ``raw_crm_files.<entity>`` rows of ``unit`` with the contents of one export file,
    unless that very file is what they hold already (loading/unchanged.py; a ``full`` window
    always loads)."""
    entity = ENTITY_BY_NAME[entity] if isinstance(entity, str) else entity
    path = Path(path)
    tz = window.tz if window else "Europe/Moscow"
    interval = (window.start, window.end) if window else (None, None)
    detail: dict[str, Any] = {"file": path.name, "sha256": unchanged.file_sha256(path)}
    detail["fingerprint"] = unchanged.fingerprint(detail["sha256"], tz, parser_code(__name__))
    table = entity.table
    if not (window and window.full):
        skipped = unchanged.already_loaded(conn, SOURCE, entity.name, unit, detail["fingerprint"], table)
        if skipped:
            return skipped
    with RawBatch(conn, SOURCE, entity.name, unit=unit, interval=interval, mode="snapshot", detail=detail) as b, \
            TabularFile(path) as f:
        detail = b.detail  # RawBatch keeps its own copy; what is added below goes to the ledger
        columns = _match_header(entity, f.header, path)
        detail.update(format=f.format, encoding=f.encoding, delimiter=f.delimiter)
        unknown = [h for h in f.header if h not in columns.values()]
        if unknown:
            detail["unknown_columns"] = unknown
            log.warning("%s: columns kept in record but not typed (schema drift): %s", path.name, unknown)
        table.ensure(conn)
        b.delete_where(table, sql.SQL("unit = %s"), (unit,))
        parser = _RowParser(entity, columns, tz, f.excel_serial)
        rejected: list[tuple[str, Row]] = []
        names = ["unit", *(fld.name for fld in entity.fields), "record", "row_number"]
        b.copy_rows(table, names, _valid_rows(b, f, parser, unit, rejected), source_part=path.name)
        # quarantine after COPY: the ledger flushes with its own COPY, which cannot nest
        for reason, row in rejected:
            b.quarantine(reason, row.raw_text, row_number=row.row_number, source_part=path.name)
        detail.update(parser.report(), blank_rows=f.blank_rows)
    assert b.result is not None
    return b.result


def _valid_rows(b: RawBatch, f: TabularFile, parser: _RowParser, unit: str, rejected: list):
    for row in f:
        b.read()
        if row.error:
            rejected.append((row.error, row))
            continue
        try:
            values = parser.parse(row)
        except ValueError as exc:
            rejected.append((str(exc), row))
            continue
        yield (unit, *values, row.data, row.row_number)


def _match_header(entity: Entity, header: list[str], path: Path) -> dict[str, str]:
    """Canonical field name → the file's header name; missing required columns fail the file."""
    by_norm: dict[str, str] = {}
    for h in header:
        by_norm.setdefault(normalize_header(h), h)
    columns: dict[str, str] = {}
    for fld in entity.fields:
        for candidate in (fld.name, *fld.aliases):
            hit = by_norm.get(normalize_header(candidate))
            if hit is not None and hit not in columns.values():
                columns[fld.name] = hit
                break
    missing = [fld.name for fld in entity.fields if fld.required and fld.name not in columns]
    if missing:
        aliases = {fld.name: fld.aliases for fld in entity.fields if fld.name in missing}
        hint = "; ".join(f"{m} (or {', '.join(repr(a) for a in aliases[m][:3])})" for m in missing)
        raise CrmFileError(
            f"{path.name}: required column(s) {hint} not found in header {header}. Expected {entity.expected()} "
            f"— a header row, ';' or ',' separated, dates dd.mm.yyyy, decimal comma allowed "
            f"(see docs/crm-file-format.md)"
        )
    return columns


class _RowParser:
    """Turns a row into typed values; raises ValueError (the quarantine reason) for bad rows.

    An unreadable *optional* value does not cost the row: it is stored as NULL (the original
    stays in ``record``) and counted per column in the ledger detail.
    """

    def __init__(self, entity: Entity, columns: dict[str, str], tz: str, excel_serial: bool):
        self.entity, self.columns, self.tz, self.excel_serial = entity, columns, tz, excel_serial
        self.seen_keys: set[str] = set()
        self.duplicates = 0
        self.unparsed_optional: dict[str, int] = {}
        self._parsers: dict[str, Callable[[Any], Any]] = {
            "text": clean_text, "money": parse_money, "decimal": parse_decimal,
            "timestamp": lambda v: parse_datetime(v, self.tz, excel_serial=self.excel_serial),
            "date": lambda v: parse_date(v, excel_serial=self.excel_serial),
            "email": _email_or_fail, "phone": _phone_or_fail,
        }

    def parse(self, row: Row) -> list[Any]:
        values = [self._value(fld, row.data.get(self.columns.get(fld.name, ""))) for fld in self.entity.fields]
        if self.entity.key:
            key = values[[f.name for f in self.entity.fields].index(self.entity.key)]
            if key in self.seen_keys:
                self.duplicates += 1
                raise ValueError(f"duplicate {self.entity.key} {key!r} in the file: the first row is kept")
            self.seen_keys.add(key)
        return values

    def _value(self, fld: Field, raw: str | None) -> Any:
        try:
            value = self._parsers[fld.kind](raw)
        except ValueError as exc:
            if fld.required:
                raise ValueError(f"{fld.name}: {exc}") from None
            self.unparsed_optional[fld.name] = self.unparsed_optional.get(fld.name, 0) + 1
            return None
        if value is None and fld.required:
            raise ValueError(f"{fld.name}: required value is empty")
        return fld.default if value is None else value

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {"duplicate_keys": self.duplicates}
        if self.unparsed_optional:
            out["unparsed_optional_values"] = self.unparsed_optional
        return out


def _email_or_fail(value) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    email = normalize_email(text)
    if email is None:
        raise ValueError(f"not an e-mail address: {text!r}")
    return email


def _phone_or_fail(value) -> str | None:
    text = clean_text(value)
    if text is None:
        return None
    phone = normalize_phone(text)
    if phone is None:
        raise ValueError(f"not a phone number: {text!r}")
    return phone
