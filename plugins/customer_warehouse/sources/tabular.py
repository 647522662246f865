"""Streaming reader of CSV and XLSX exports: one :class:`Row` at a time, never the whole file.

A row comes with its number as a person sees it in Excel (the header is row 1), its values by
header name as text, the raw text it was read from (for quarantine), and ``error`` when it
cannot be trusted: undecodable bytes or a wrong number of columns. The caller decides what to
do with a bad row; the reader never drops one silently. Fully blank lines (``;;;;`` trailers
that Excel writes) carry no data and are only counted in :attr:`TabularFile.blank_rows`.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from . import parsing
from .parsing import UTF8_BOM, detect_encoding, sniff_delimiter

SAMPLE_BYTES = 1 << 16
csv.field_size_limit(16 << 20)


@functools.cache
def parser_code(module_name: str) -> str:
    """Hash of the code that turns an export file of ``module_name`` into rows: that module, this
    reader and the value parsers. Part of a file load's fingerprint (loading/unchanged.py), so a
    changed parser loads every file again."""
    from ..loading import unchanged

    return unchanged.code_hash([sys.modules[module_name], sys.modules[__name__], parsing])


class Row(NamedTuple):
    row_number: int
    data: dict[str, str | None]
    raw_text: str
    error: str | None = None


class TabularError(ValueError):
    """The file as a whole cannot be read (no header, not a CSV/XLSX)."""


class TabularFile:
    """``with TabularFile(path) as f: f.header; for row in f: ...``

    ``format`` is ``csv`` or ``xlsx``; for CSV also ``encoding`` and ``delimiter`` (sniffed
    unless given). XLSX dates arrive as ISO text, and numbers as Python's text of them, so
    ``excel_serial`` tells parsers that a bare number in a date column is an Excel day serial.
    """

    def __init__(self, path: str | Path, *, sheet: str | None = None, encoding: str | None = None,
                 delimiter: str | None = None):
        self.path = Path(path)
        self.sheet = sheet
        self.encoding = encoding
        self.delimiter = delimiter
        self.format = "xlsx" if self.path.suffix.lower() in (".xlsx", ".xlsm") else "csv"
        self.header: list[str] = []
        self.blank_rows = 0
        self._rows: Iterator[Row] | None = None
        self._closers: list = []

    @property
    def excel_serial(self) -> bool:
        return self.format == "xlsx"

    def __enter__(self) -> TabularFile:
        self._rows = self._open_xlsx() if self.format == "xlsx" else self._open_csv()
        return self

    def __exit__(self, *exc) -> None:
        for close in self._closers:
            close()

    def __iter__(self) -> Iterator[Row]:
        if self._rows is None:
            raise RuntimeError("use TabularFile as a context manager")
        return self._rows

    # -- CSV ------------------------------------------------------------------------------------
    def _open_csv(self) -> Iterator[Row]:
        fh = self.path.open("rb")
        self._closers.append(fh.close)
        sample = fh.read(SAMPLE_BYTES)
        fh.seek(0)
        self.encoding = self.encoding or detect_encoding(sample)
        lines = _DecodedLines(fh, self.encoding)
        header_text = None
        for text in lines:
            if text.strip():
                header_text = text
                break
        if header_text is None:
            raise TabularError(f"{self.path.name}: empty file, expected a header row")
        self.delimiter = self.delimiter or sniff_delimiter(header_text)
        if lines.bad_current:
            raise TabularError(f"{self.path.name}: header is not valid {self.encoding}")
        self.header = _unique_names(next(csv.reader([header_text], delimiter=self.delimiter)))
        return self._csv_rows(lines)

    def _csv_rows(self, lines: _DecodedLines) -> Iterator[Row]:
        reader = csv.reader(lines, delimiter=self.delimiter, strict=False)
        width = len(self.header)
        while True:
            lines.start_record()
            start = lines.line_number + 1
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Row(start, {}, lines.record_text(), f"unreadable CSV: {exc}")
                continue
            raw = lines.record_text()
            if not any(f.strip() for f in fields):
                self.blank_rows += 1
                continue
            if lines.record_bad:
                yield Row(start, {}, lines.record_raw(), f"bad encoding: not valid {self.encoding}")
                continue
            yield _shape(start, self.header, fields, raw, width)

    # -- XLSX -----------------------------------------------------------------------------------
    def _open_xlsx(self) -> Iterator[Row]:
        import openpyxl

        try:
            wb = openpyxl.load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:
            raise TabularError(f"{self.path.name}: not a readable XLSX workbook ({exc})") from exc
        self._closers.append(wb.close)
        ws = wb[self.sheet] if self.sheet else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        for number, values in enumerate(rows, start=1):
            texts = [_cell_text(v) for v in values]
            if any(t for t in texts):
                self.header = _unique_names([t or "" for t in texts])
                return self._xlsx_rows(rows, number)
        raise TabularError(f"{self.path.name}: empty sheet, expected a header row")

    def _xlsx_rows(self, rows, header_number: int) -> Iterator[Row]:
        width = len(self.header)
        for number, values in enumerate(rows, start=header_number + 1):
            texts = [_cell_text(v) for v in values]
            if not any(texts):
                self.blank_rows += 1
                continue
            raw = "\t".join(t or "" for t in texts)
            # a sheet has no column-count errors: missing trailing cells are just empty ones
            fields = [t or "" for t in texts] + [""] * (width - len(texts))
            yield _shape(number, self.header, fields, raw, width)


def _shape(number: int, header: list[str], fields: list[str], raw: str, width: int) -> Row:
    """Pair values with header names; a short row or non-empty overflow is an error."""
    if len(fields) > width and not any(f.strip() for f in fields[width:]):
        fields = fields[:width]  # trailing separators carry nothing
    if len(fields) != width:
        return Row(number, {}, raw, f"wrong number of columns: {len(fields)}, header has {width}")
    data = {name: (value if value != "" else None) for name, value in zip(header, fields, strict=True)}
    return Row(number, data, raw)


def _unique_names(names: list[str]) -> list[str]:
    """Header names trimmed; blanks named ``column_N``; repeats suffixed ``_2``, ``_3``…"""
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names, start=1):
        name = name.replace("\ufeff", "").strip() or f"column_{i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
        out.append(name)
    return out


def _cell_text(value) -> str | None:
    """An XLSX cell as text: ISO for dates, ``1001`` not ``1001.0`` for whole numbers."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    text = str(value)
    return text if text.strip() else None


class _DecodedLines:
    """Lines of a binary file decoded one by one, remembering which ones would not decode.

    Decoding per line (cp1251 and UTF-8 both keep ``\\n`` a single byte) lets one bad line be
    quarantined instead of failing the file; a record spanning lines is bad if any part is.
    """

    def __init__(self, fh, encoding: str):
        self.fh = fh
        self.encoding = "utf-8" if encoding == "utf-8-sig" else encoding
        self.line_number = 0
        self.bad_current = False
        self._first = True
        self._texts: list[str] = []
        self._raws: list[bytes] = []
        self.record_bad = False

    def __iter__(self):
        return self

    def __next__(self) -> str:
        raw = self.fh.readline()
        if not raw:
            raise StopIteration
        if self._first and raw.startswith(UTF8_BOM):
            raw = raw[len(UTF8_BOM):]
        self._first = False
        self.line_number += 1
        try:
            text = raw.decode(self.encoding)
            self.bad_current = False
        except UnicodeDecodeError:
            text = raw.decode(self.encoding, errors="replace")
            self.bad_current = True
            self.record_bad = True
        self._texts.append(text)
        self._raws.append(raw)
        return text

    def start_record(self) -> None:
        self._texts.clear()
        self._raws.clear()
        self.record_bad = False

    def record_text(self) -> str:
        return "".join(self._texts).rstrip("\r\n")

    def record_raw(self) -> str:
        """The record's bytes, undecodable ones shown as ``\\xNN`` escapes."""
        return b"".join(self._raws).decode(self.encoding, errors="backslashreplace").rstrip("\r\n")
