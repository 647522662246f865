"""Survey responses: the shared landing (mapping, answer typing, ``raw_surveys.responses``) and
the file channel (CSV/XLSX exports from Google Forms, Yandex Forms, Anketolog, any tool).

Questions differ per form and per tool, so what a question *means* lives in a per-form mapping
file, not in code. A file form is ``<form>.csv`` or ``<form>.xlsx`` plus ``<form>.mapping.yml``::

    form_id: nps_2026                    # optional, default: the file stem
    submitted_at: "Отметка времени"      # the column with the response time (required)
    response_id: "ID ответа"             # optional; else a stable hash of the row's content
    list_separator: ";"                  # optional, for interests/values (default: ";" or ",")
    columns:                             # header → meaning
      "Адрес электронной почты": respondent_email
      "Насколько вероятно, что вы порекомендуете нас друзьям?": nps

The API channels (Typeform, Yandex Forms) use the same meanings with ``fields:`` keyed by the
question's ref/id/slug and ``hidden:`` for hidden fields.

Answer typing (decided here for every channel alike):

* ``nps`` must be a whole number 0–10. Anything else keeps the response (its purpose or exit
  reason is still worth having) but stores ``nps`` as null and counts ``nps_invalid`` in the
  ledger detail; the original stays in ``record``.
* ``satisfaction`` is a number (``4``, ``4,5``, ``"4 из 5"``); otherwise null + ``satisfaction_invalid``.
* ``interests`` and ``values`` (multiple choice) are text, the chosen labels joined with ``"; "``
  like every other text answer, plus ``interests_list`` / ``values_list`` with the labels as a
  JSON array for exact matching. ``purpose`` and ``exit_reason`` are text.
* ``respondent_email`` / ``respondent_phone`` / ``respondent_client_id`` go to their own columns,
  normalised (lower-cased e-mail, ``7XXXXXXXXXX`` phone); a malformed one becomes null and is
  counted (``respondent_email_invalid`` …).
* ``x_<anything>``: an extra question kept in ``answers`` as text.
* A response without a readable submission time is quarantined: it cannot be versioned.

Responses are upserted by ``(channel, form_id, response_id)``, the newest ``submitted_at`` winning,
so re-reading an export or an overlapping API window never duplicates anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..loading import BatchResult, Column, RawBatch, RawTable, unchanged
from . import Window
from .parsing import (
    clean_text,
    normalize_email,
    normalize_header,
    normalize_phone,
    parse_datetime,
    parse_decimal,
)
from .tabular import TabularFile, parser_code

log = logging.getLogger(__name__)

SOURCE = "survey_files"
ANSWER_MEANINGS = ("purpose", "nps", "satisfaction", "exit_reason", "interests", "values")
LIST_MEANINGS = ("interests", "values")
RESPONDENT_MEANINGS = ("respondent_email", "respondent_phone", "respondent_client_id")
MEANINGS = ANSWER_MEANINGS + RESPONDENT_MEANINGS
DATA_EXTENSIONS = (".csv", ".xlsx", ".xlsm")
RESPONSE_COLUMNS = ["channel", "form_id", "response_id", "submitted_at", "respondent_email", "respondent_phone",
                    "respondent_client_id", "answers", "record"]


def responses_table() -> RawTable:
    """``raw_surveys.responses`` (docs/raw-layer.md), keyed by channel, form and response id."""
    return RawTable(
        "raw_surveys", "responses",
        [Column("channel", "text not null"), Column("form_id", "text not null"), Column("response_id", "text not null"),
         Column("submitted_at", "timestamptz"), Column("respondent_email"), Column("respondent_phone"),
         Column("respondent_client_id"), Column("answers", "jsonb not null"), Column("record", "jsonb not null")],
        key=("channel", "form_id", "response_id"), version_column="submitted_at",
        indexes=(("submitted_at",),),
    )


class MappingError(ValueError):
    """A mapping file that cannot be used; the message names the file and what is wrong."""


# -- mappings -----------------------------------------------------------------------------------
@dataclass
class SurveyMapping:
    """What each column / field / hidden variable of one form means."""

    form_id: str
    submitted_at: str | None = None
    response_id: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    hidden: dict[str, str] = field(default_factory=dict)
    list_separator: str | None = None
    source: str = ""


def load_mapping(path: str | Path, *, default_form_id: str | None = None) -> SurveyMapping:
    """Read and check a ``*.mapping.yml``; unknown meanings are refused (a typo would lose data)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path.name}: cannot read mapping: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path.name}: a mapping file is a YAML dictionary")
    form_id = str(data.get("form_id") or default_form_id or path.name.removesuffix(".mapping.yml"))
    mapping = SurveyMapping(
        form_id=form_id,
        submitted_at=_opt_str(data.get("submitted_at")),
        response_id=_opt_str(data.get("response_id")),
        columns=_meanings(data.get("columns"), path, "columns"),
        fields=_meanings(data.get("fields") or data.get("questions"), path, "fields"),
        hidden=_meanings(data.get("hidden"), path, "hidden"),
        list_separator=_opt_str(data.get("list_separator")),
        source=path.name,
    )
    return mapping


def _opt_str(value) -> str | None:
    return None if value is None else str(value)


def _meanings(section, path: Path, name: str) -> dict[str, str]:
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise MappingError(f"{path.name}: '{name}' must map a question to a meaning")
    out = {}
    for question, meaning in section.items():
        meaning = str(meaning).strip()
        if meaning not in MEANINGS and not meaning.startswith("x_"):
            raise MappingError(
                f"{path.name}: {name}[{question!r}] has unknown meaning {meaning!r}; "
                f"use one of {', '.join(MEANINGS)} or x_<name> for an extra question"
            )
        out[str(question)] = meaning
    return out


# -- typing answers -----------------------------------------------------------------------------
@dataclass
class Response:
    """One response after mapping, ready to land."""

    response_id: str
    submitted_at: Any
    answers: dict[str, Any]
    respondent: dict[str, str | None]
    record: dict[str, Any]


class AnswerTyper:
    """Turns raw answers (meaning → value as the source gave it) into typed answers, counting
    what it had to drop so the ledger says how many NPS values were unusable."""

    def __init__(self, list_separator: str | None = None):
        self.list_separator = list_separator
        self.warnings: Counter[str] = Counter()

    def type_answers(self, raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
        answers: dict[str, Any] = {}
        respondent: dict[str, str | None] = dict.fromkeys(RESPONDENT_MEANINGS)
        for meaning, value in raw.items():
            if meaning in RESPONDENT_MEANINGS:
                respondent[meaning] = self._respondent(meaning, value)
            elif meaning in LIST_MEANINGS:
                labels = None if _is_empty(value) else self._labels(value)
                answers[meaning] = "; ".join(labels) if labels else None
                if labels:
                    answers[f"{meaning}_list"] = labels
            else:
                typed = self._answer(meaning, value)
                if typed is not None or meaning in ANSWER_MEANINGS:
                    answers[meaning] = typed
        return answers, respondent

    def _answer(self, meaning: str, value: Any) -> Any:
        if _is_empty(value):
            return None
        if meaning == "nps":
            return self._number(value, meaning, whole=True, low=0, high=10)
        if meaning == "satisfaction":
            return self._number(value, meaning, whole=False)
        return _as_text(value)

    def _number(self, value: Any, meaning: str, *, whole: bool, low: int | None = None, high: int | None = None):
        number = _leading_number(value)
        if number is None or (whole and number != int(number)) or \
                (low is not None and not (low <= number <= high)):
            self.warnings[f"{meaning}_invalid"] += 1
            return None
        return int(number) if number == int(number) else float(number)

    def _labels(self, value: Any) -> list[str]:
        if isinstance(value, list | tuple):
            return [s for s in (_as_text(v) for v in value) if s]
        text = _as_text(value) or ""
        sep = self.list_separator or (";" if ";" in text else ",")
        return [part.strip() for part in text.split(sep) if part.strip()]

    def _respondent(self, meaning: str, value: Any) -> str | None:
        text = _as_text(value)
        if text is None:
            return None
        if meaning == "respondent_email":
            result = normalize_email(text)
        elif meaning == "respondent_phone":
            result = normalize_phone(text)
        else:
            result = re.sub(r"\.0+$", "", text.strip()) or None  # ClientIDs that passed through Excel
        if result is None:
            self.warnings[f"{meaning}_invalid"] += 1
        return result


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


def _as_text(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return "; ".join(s for s in (_as_text(v) for v in value) if s) or None
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return clean_text(value)


def _leading_number(value: Any):
    """``9``, ``"9"``, ``"9,0"``, ``"9 — точно порекомендую"``, ``"4 из 5"`` → the number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    m = re.match(r"\s*(-?\d+(?:[.,]\d+)?)", str(value))
    if not m:
        return None
    try:
        return parse_decimal(m.group(1))
    except ValueError:  # pragma: no cover - the regex only lets numbers through
        return None


def stable_id(record: dict[str, Any]) -> str:
    """A response id from the row's content, for exports without one (same row → same id)."""
    text = json.dumps(record, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def land_responses(batch: RawBatch, table: RawTable, channel: str, form_id: str, responses: Iterable[Response],
                   *, source_part: str | None = None) -> int:
    """Upsert mapped responses (already counted as read) into ``raw_surveys.responses``."""
    rows = (
        (channel, form_id, r.response_id, r.submitted_at, r.respondent.get("respondent_email"),
         r.respondent.get("respondent_phone"), r.respondent.get("respondent_client_id"), r.answers, r.record)
        for r in responses
    )
    return batch.upsert_rows(table, RESPONSE_COLUMNS, rows, source_part=source_part)


# -- the file channel ---------------------------------------------------------------------------
def units(cfg) -> list[str]:
    """One unit per form file in the folder (the file stem), with or without a mapping yet."""
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{cfg.conn_id}: survey export folder {folder!s} does not exist (extra.path)")
    return sorted({p.stem for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS})


def extract_load(cfg, unit: str, window: Window, conn) -> list[BatchResult]:
    folder = Path(cfg.path).expanduser()
    data_path = _data_file(folder, unit)
    mapping_path = folder / f"{unit}.mapping.yml"
    if not mapping_path.exists():
        raise MappingError(f"{data_path.name}: no mapping file {mapping_path.name} beside it "
                           f"(see the survey_files module docs for the format)")
    mapping = load_mapping(mapping_path, default_form_id=unit)
    return [load_file(conn, data_path, mapping, window=window)]


def _data_file(folder: Path, stem: str) -> Path:
    found = [folder / f"{stem}{ext}" for ext in DATA_EXTENSIONS if (folder / f"{stem}{ext}").is_file()]
    if not found:
        raise FileNotFoundError(f"{folder}: no {stem}.csv or {stem}.xlsx")
    if len(found) > 1:
        raise MappingError(f"{folder}: both {', '.join(p.name for p in found)} present; keep one export per form")
    return found[0]


def load_file(conn, path: str | Path, mapping: SurveyMapping, *, window: Window | None = None,
              channel: str = "file") -> BatchResult:
    """Land one survey export file under ``mapping``; one batch, upserted by response id. A file
    this form already loaded, under the same mapping, is skipped (loading/unchanged.py; a ``full``
    window always loads)."""
    path = Path(path)
    tz = window.tz if window else "Europe/Moscow"
    interval = (window.start, window.end) if window else (None, None)
    table = responses_table()
    detail = {"file": path.name, "mapping": mapping.source, "sha256": unchanged.file_sha256(path)}
    mapping_text = json.dumps(dataclasses.asdict(mapping), sort_keys=True)
    detail["fingerprint"] = unchanged.fingerprint(detail["sha256"], tz, channel, mapping_text, parser_code(__name__))
    if not (window and window.full):
        skipped = unchanged.already_loaded(conn, SOURCE, "responses", mapping.form_id, detail["fingerprint"], table)
        if skipped:
            return skipped
    with RawBatch(conn, SOURCE, "responses", unit=mapping.form_id, interval=interval, mode="upsert",
                  detail=detail) as b, TabularFile(path) as f:
        columns = _resolve_columns(mapping, f.header, path)
        unmapped = [h for h in f.header if h not in columns.used()]
        b.detail.update(format=f.format, encoding=f.encoding, delimiter=f.delimiter, unmapped_columns=unmapped)
        table.ensure(conn)
        typer = AnswerTyper(mapping.list_separator)
        good: list[Response] = []
        for row in f:
            b.read()
            if row.error:
                b.quarantine(row.error, row.raw_text, row_number=row.row_number, source_part=path.name)
                continue
            try:
                good.append(_file_response(row.data, columns, typer, tz, f.excel_serial))
            except ValueError as exc:
                b.quarantine(str(exc), row.raw_text, row_number=row.row_number, source_part=path.name)
        land_responses(b, table, channel, mapping.form_id, good, source_part=path.name)
        b.detail.update(warnings=dict(typer.warnings), blank_rows=f.blank_rows)
    assert b.result is not None
    return b.result


@dataclass(frozen=True)
class _FileColumns:
    submitted_at: str
    response_id: str | None
    meanings: dict[str, str]  # the file's header → meaning

    def used(self) -> set[str]:
        return {self.submitted_at, self.response_id, *self.meanings} - {None}


def _resolve_columns(mapping: SurveyMapping, header: list[str], path: Path) -> _FileColumns:
    """Find the mapping's columns in the header (case/space-insensitively); missing ones fail the file."""
    if not mapping.submitted_at:
        raise MappingError(f"{mapping.source}: 'submitted_at' must name the response-time column of {path.name}")
    by_norm = {normalize_header(h): h for h in reversed(header)}
    missing: list[str] = []

    def find(column: str) -> str:
        hit = by_norm.get(normalize_header(column))
        if hit is None:
            missing.append(column)
        return hit or ""

    submitted = find(mapping.submitted_at)
    response_id = find(mapping.response_id) if mapping.response_id else None
    meanings = {find(column): meaning for column, meaning in mapping.columns.items()}
    if missing:
        raise MappingError(f"{path.name}: column(s) {missing} named in {mapping.source} are not in the header {header}")
    return _FileColumns(submitted, response_id, meanings)


def _file_response(data: dict[str, str | None], columns: _FileColumns, typer: AnswerTyper, tz: str,
                   excel_serial: bool) -> Response:
    try:
        submitted = parse_datetime(data.get(columns.submitted_at), tz, excel_serial=excel_serial)
    except ValueError as exc:
        raise ValueError(f"submitted_at: {exc}") from None
    if submitted is None:
        raise ValueError(f"submitted_at: {columns.submitted_at!r} is empty")
    if columns.response_id:
        response_id = clean_text(data.get(columns.response_id))
        if response_id is None:
            raise ValueError(f"response_id: {columns.response_id!r} is empty")
    else:
        response_id = stable_id(data)
    raw = {meaning: data.get(column) for column, meaning in columns.meanings.items()}
    answers, respondent = typer.type_answers(raw)
    return Response(response_id, submitted, answers, respondent, data)
