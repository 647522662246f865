"""Russian-locale parsing shared by the file and survey sources.

Small businesses export from Excel with a Russian locale: cp1251 or UTF-8 (with or without a
BOM), ``;`` as the separator because ``,`` is the decimal mark, money as ``1 234,56 ₽`` with
(non-breaking) spaces between thousands, dates as ``dd.mm.yyyy``. XLSX files add Excel serial
day numbers when a date column was not formatted as a date. Every helper here either returns
a clean value, ``None`` for an empty cell, or raises :class:`ValueError` saying what it could
not read, so the caller can quarantine the row with that reason.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

UTF8_BOM = b"\xef\xbb\xbf"

# every kind of space Excel and 1C put between thousands
_SPACES = "\u00a0\u202f\u2009\u2007\u200a\u2002\u2003 \t'’"
_CURRENCY = re.compile(r"(₽|руб\.?|р\.|р$|rub|rur|\$|€|usd|eur)", re.IGNORECASE)
_MINUS = "-\u2212\u2012\u2013\u2014"


# -- encodings and delimiters -------------------------------------------------------------------
def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` or ``cp1251`` for the first bytes of a file.

    Judged line by line so one stray cp1251 line in a UTF-8 file does not flip the whole file
    (that line is quarantined later as bad encoding instead).
    """
    if sample.startswith(UTF8_BOM):
        return "utf-8-sig"
    good = bad = 0
    lines = sample.split(b"\n")
    for i, line in enumerate(lines):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            good += 1
        except UnicodeDecodeError as exc:
            # a sample may end inside a multi-byte character: that is not evidence against UTF-8
            if not (i == len(lines) - 1 and exc.reason == "unexpected end of data"):
                bad += 1
    if good == 0 and bad == 0:
        return "utf-8"
    return "utf-8" if good >= bad else "cp1251"


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Decode a whole small file: ``(text, encoding)``. Strict: raises on undecodable bytes."""
    encoding = detect_encoding(data[:65536])
    return data.decode(encoding), encoding


def sniff_delimiter(header_line: str) -> str:
    """The separator of a CSV judged from its header line: ``;``, ``,`` or tab.

    Only the header is used: data rows carry decimal commas that would fool a count. Ties and a
    one-column header go to ``;`` when present, else ``,``.
    """
    counts = {d: 0 for d in (";", ",", "\t")}
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts.values())
    if best == 0:
        return ","
    for d in (";", "\t", ","):
        if counts[d] == best:
            return d
    return ","  # pragma: no cover


def normalize_header(name: str) -> str:
    """A header as compared with aliases: case-folded, trimmed, inner spaces collapsed, ё → е."""
    name = name.replace("\ufeff", "").strip().strip('"').strip()
    name = re.sub(r"[\s_\u00a0]+", " ", name)
    return name.casefold().replace("ё", "е")


# -- numbers ------------------------------------------------------------------------------------
def parse_decimal(text: str | float | int | Decimal | None) -> Decimal | None:
    """A number written the Russian or the English way: ``1 234,56``, ``1,234.56``, ``-1 234,5 ₽``.

    A lone comma is the decimal mark (Russian locale); several commas, or commas before a dot,
    separate thousands. Parentheses mean a negative amount (accounting style).
    """
    if text is None:
        return None
    if isinstance(text, bool):
        raise ValueError(f"not a number: {text!r}")
    if isinstance(text, int | Decimal):
        return Decimal(text)
    if isinstance(text, float):
        return Decimal(repr(text))
    s = _CURRENCY.sub("", text.strip())
    for ch in _SPACES:
        s = s.replace(ch, "")
    if not s:
        return None
    negative = False
    if s.startswith("(") and s.endswith(")"):
        negative, s = True, s[1:-1]
    if s and s[0] in _MINUS:
        negative, s = not negative, s[1:]
    elif s.startswith("+"):
        s = s[1:]
    if s and s[-1] in _MINUS:  # "1234-" from some 1C reports
        negative, s = not negative, s[:-1]
    s = _normalize_separators(s, text)
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", s):
        raise ValueError(f"not a number: {text!r}")
    try:
        value = Decimal(s)
    except InvalidOperation as exc:  # pragma: no cover - the regex above guards it
        raise ValueError(f"not a number: {text!r}") from exc
    return -value if negative else value


def _normalize_separators(s: str, original: str) -> str:
    commas, dots = s.count(","), s.count(".")
    if commas and dots:
        decimal_mark = "," if s.rfind(",") > s.rfind(".") else "."
        thousands = "." if decimal_mark == "," else ","
        if s.count(decimal_mark) > 1:
            raise ValueError(f"not a number: {original!r}")
        return s.replace(thousands, "").replace(decimal_mark, ".")
    if commas > 1:
        return _drop_thousands(s, ",", original)
    if dots > 1:
        return _drop_thousands(s, ".", original)
    return s.replace(",", ".")


def _drop_thousands(s: str, sep: str, original: str) -> str:
    head, *groups = s.split(sep)
    if not (1 <= len(head) <= 3) or any(len(g) != 3 for g in groups):
        raise ValueError(f"not a number: {original!r}")
    return head + "".join(groups)


def parse_money(text: str | float | int | Decimal | None) -> Decimal | None:
    """Money rounded to kopecks (``numeric(18,2)``)."""
    value = parse_decimal(text)
    return None if value is None else value.quantize(Decimal("0.01"))


def parse_int(text: str | float | int | None) -> int | None:
    """An integer, also when written ``9,0`` or ``9.0`` (Excel); fractions are refused."""
    value = parse_decimal(text)
    if value is None:
        return None
    if value != value.to_integral_value():
        raise ValueError(f"not a whole number: {text!r}")
    return int(value)


# -- dates and times ----------------------------------------------------------------------------
EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # Excel's day 0, after its 1900 leap-year bug
_SERIAL_RANGE = (1.0, 2958465.0)  # 1900-01-01 … 9999-12-31
_RU_DATE = re.compile(
    r"(\d{1,2})[./](\d{1,2})[./](\d{4}|\d{2})(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?)?"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def excel_serial_to_datetime(serial: float) -> dt.datetime:
    """A naive datetime from an Excel serial day number (fractions are the time of day)."""
    if not (_SERIAL_RANGE[0] <= serial <= _SERIAL_RANGE[1]):
        raise ValueError(f"not an Excel date serial: {serial!r}")
    value = EXCEL_EPOCH + dt.timedelta(days=serial)
    # Excel stores times as binary fractions of a day: round away the float noise
    return (value + dt.timedelta(microseconds=500_000)).replace(microsecond=0) if value.microsecond else value


def parse_naive_or_aware(text: str, *, excel_serial: bool = False) -> dt.datetime | None:
    """A datetime as written, naive or aware; ``None`` for an empty cell."""
    s = text.strip() if isinstance(text, str) else text
    if s in (None, ""):
        return None
    if isinstance(s, dt.datetime):
        return s
    if isinstance(s, dt.date):
        return dt.datetime.combine(s, dt.time())
    if isinstance(s, int | float):
        if not excel_serial:
            raise ValueError(f"not a date: {text!r}")
        return excel_serial_to_datetime(float(s))
    m = _RU_DATE.fullmatch(s)
    if m:
        return _from_ru_match(m, text)
    if _ISO_DATE.match(s):
        try:
            return dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T", 1))
        except ValueError:
            raise ValueError(f"not a date: {text!r}") from None
    if excel_serial and re.fullmatch(r"\d+([.,]\d+)?", s):
        return excel_serial_to_datetime(float(s.replace(",", ".")))
    raise ValueError(f"not a date: {text!r} (expected dd.mm.yyyy [hh:mm[:ss]] or yyyy-mm-dd)")


def _from_ru_match(m: re.Match, text: str) -> dt.datetime:
    day, month, year, hour, minute, second, frac = m.groups()
    y = int(year)
    if len(year) == 2:  # two-digit years: the export is recent, so 00–69 → 2000s
        y += 2000 if y < 70 else 1900
    try:
        return dt.datetime(
            y, int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
            int((frac or "0").ljust(6, "0")),
        )
    except ValueError:
        raise ValueError(f"not a date: {text!r}") from None


def parse_datetime(text, tz: str = "Europe/Moscow", *, excel_serial: bool = False) -> dt.datetime | None:
    """A timezone-aware datetime; a naive local time is read in the business time zone ``tz``."""
    value = parse_naive_or_aware(text, excel_serial=excel_serial)
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value


def parse_date(text, *, excel_serial: bool = False) -> dt.date | None:
    """A calendar date; a datetime with a time of day other than midnight is refused."""
    value = parse_naive_or_aware(text, excel_serial=excel_serial)
    if value is None:
        return None
    if value.time() != dt.time() and value.tzinfo is None:
        raise ValueError(f"expected a date without time: {text!r}")
    return value.date()


def format_timestamp(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``: the form API query parameters take this."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- contacts -----------------------------------------------------------------------------------
_EXTENSION = re.compile(r"(доб|ext|вн|#|x\b).*$", re.IGNORECASE)


def normalize_phone(text: str | int | None) -> str | None:
    """Digits only; Russian numbers as ``7XXXXXXXXXX`` (``8…``, ``+7…``, bare 10-digit ``9…``).

    An extension (``доб. 123``) is dropped. Fewer than 7 digits is not a phone: ``None``.
    """
    if text is None:
        return None
    s = _EXTENSION.sub("", str(text))
    digits = re.sub(r"\D", "", s)
    if len(digits) < 7:
        return None
    if len(digits) == 11 and digits[0] in "78":
        return "7" + digits[1:]
    if len(digits) == 10 and digits[0] == "9":
        return "7" + digits
    return digits


_EMAIL = re.compile(r"[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;.]+")


def normalize_email(text: str | None) -> str | None:
    """Trimmed and lower-cased; ``None`` when empty or not an address (``mailto:`` and ``<…>`` dropped)."""
    if text is None:
        return None
    s = str(text).strip().strip("<>").strip()
    if s.lower().startswith("mailto:"):
        s = s[7:]
    s = s.strip().lower()
    return s if _EMAIL.fullmatch(s) else None


def clean_text(value) -> str | None:
    """A text cell: trimmed, ``None`` when empty."""
    if value is None:
        return None
    s = str(value).strip()
    return s or None
