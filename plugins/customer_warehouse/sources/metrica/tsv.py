"""Logs API TSV: column names, line splitting and escaping, without holding a part in memory.

Metrica writes ClickHouse-style TabSeparated: one record a line, raw tabs only between
fields, backslash escapes (``\\t``, ``\\n``, ``\\\\``, ``\\'``, ``\\0``…) inside values. That is
almost PostgreSQL's COPY text format, so a valid line is passed to COPY nearly as it is, after
:func:`to_copy_text` rewrites the few escapes whose meaning differs (or that PostgreSQL cannot
store: NUL, bytes that are not UTF-8). Values are kept as Metrica wrote them; dbt types them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_PREFIX = re.compile(r"^ym:[a-z]+:")
_ACRONYM_WORD = re.compile(r"([A-Z]+)([A-Z][a-z])")
_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")


def field_to_column(field: str) -> str:
    """``ym:s:lastsignUTMSource`` → ``lastsign_utm_source`` (docs/raw-layer.md).

    The ``ym:<x>:`` prefix is dropped and camelCase becomes snake_case with acronyms kept
    whole: ``visitID`` → ``visit_id``, ``startURL`` → ``start_url``.
    """
    name = _PREFIX.sub("", field.strip())
    name = _ACRONYM_WORD.sub(r"\1_\2", name)
    name = _LOWER_UPPER.sub(r"\1_\2", name)
    return name.lower()


def split_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    r"""Byte lines (without ``\n``) from a stream of byte chunks.

    Split on ``\n`` only: a stray carriage return is data, not a line end.
    """
    pending = b""
    for chunk in chunks:
        if not chunk:
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending


def join_escaped_newlines(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    r"""``(line number, record)``: a line ending in an odd number of backslashes continues.

    ClickHouse may write a newline inside a value as backslash + real line feed; such a record
    spans two physical lines and is rejoined here, the newline becoming the ``\n`` escape.
    Line numbers are physical, 1-based, of the record's first line.
    """
    held: bytes | None = None
    held_no = 0
    for no, line in enumerate(lines, start=1):
        if held is not None:
            line = held[:-1] + b"\\n" + line
            no = held_no
            held = None
        if _ends_with_escape(line):
            held, held_no = line, no
            continue
        yield no, line
    if held is not None:
        yield held_no, held


def _ends_with_escape(line: bytes) -> bool:
    stripped = line.rstrip(b"\\")
    return (len(line) - len(stripped)) % 2 == 1


# escapes that mean the same in ClickHouse TSV and PostgreSQL COPY text
_SAME = frozenset("\\tnrbfvN")
_ESCAPE_OR_RAW = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|.?)|[\r\x00]", re.S)


def to_copy_text(value: str) -> str:
    r"""A Metrica-escaped line (or value) rewritten as PostgreSQL COPY text.

    * ``\\ \t \n \r \b \f \v \N`` and ``\<punctuation>`` mean the same in both: kept.
    * ``\0`` (NUL) cannot be stored in PostgreSQL text: kept visibly as the two characters ``\0``.
    * ``\1``…``\9`` are octal escapes to COPY but the digit itself to ClickHouse: the digit.
    * ``\xHH`` is kept when it is ASCII; NUL or a lone high byte (not UTF-8) stays as text.
    * ``\a`` is BEL to ClickHouse but ``a`` to COPY: written as ``\x07``.
    * a raw carriage return or NUL byte (never produced by Metrica) is escaped, never fatal.
    """
    if "\\" not in value and "\r" not in value and "\x00" not in value:
        return value
    return _ESCAPE_OR_RAW.sub(_rewrite, value)


def _rewrite(m: re.Match) -> str:
    esc = m.group(1)
    if esc is None:  # a raw CR or NUL
        return "\\r" if m.group(0) == "\r" else "\\\\0"
    if esc == "":  # a lone trailing backslash
        return "\\\\"
    if esc[0] == "x" and len(esc) > 1:
        code = int(esc[1:], 16)
        return m.group(0) if 0 < code < 0x80 else "\\\\" + esc
    if esc in _SAME or not esc.isalnum():
        return m.group(0)
    if esc == "0":
        return "\\\\0"
    if esc == "a":
        return "\\x07"
    return esc  # digits and other letters stand for themselves in ClickHouse


_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0", "a": "\a",
             "\\": "\\", "'": "'", '"': '"'}
_ANY_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.S)


def unescape(value: str) -> str | None:
    r"""One Metrica TSV value decoded to its real text (``\N`` → None). For checks and tools;
    the loader does not need it because COPY decodes."""
    if value == "\\N":
        return None
    if "\\" not in value:
        return value
    return _ANY_ESCAPE.sub(_decode, value)


def _decode(m: re.Match) -> str:
    esc = m.group(1)
    if esc in _UNESCAPE:
        return _UNESCAPE[esc]
    if len(esc) == 3:  # xHH
        return chr(int(esc[1:], 16))
    return esc


def escape(value: str | None) -> str:
    """Text written the way Metrica writes it (for emulators and test fixtures)."""
    if value is None:
        return "\\N"
    return (value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
            .replace("'", "\\'").replace("\0", "\\0"))
