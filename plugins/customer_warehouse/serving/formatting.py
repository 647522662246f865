"""Number, money, share and date formatting for the dashboard, in Russian or English.

The server formats every value the page shows (headlines, tables, tooltips), so the text a
leader reads is the same text the API returns and the tests compare against SQL. Money is whole
units of the business's currency with non-breaking spaces between thousands: ``1 234 567 ₽``.
The browser's chart axes use the same rules (``static/app.js`` mirrors :func:`group`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
from typing import Any
from zoneinfo import ZoneInfo

NBSP = "\u00a0"
MINUS = "\u2212"
DASH = "—"
LANGS = ("ru", "en")
CURRENCY_SYMBOLS = {"RUB": "₽", "USD": "$", "EUR": "€", "KZT": "₸", "BYN": "Br", "UZS": "сўм", "GBP": "£"}


def default_lang() -> str:
    lang = (os.environ.get("CW_DASHBOARD_LANG") or "ru").lower()
    return lang if lang in LANGS else "ru"


def default_currency() -> str:
    return (os.environ.get("CW_CURRENCY") or "RUB").upper()


def default_timezone() -> str:
    return os.environ.get("CW_TIMEZONE") or "Europe/Moscow"


def currency_symbol(code: str) -> str:
    return CURRENCY_SYMBOLS.get(code.upper(), code.upper())


def group(digits: str) -> str:
    """``"1234567"`` → ``"1 234 567"`` (non-breaking spaces, so a number never wraps)."""
    head = len(digits) % 3 or 3
    parts = [digits[:head]] + [digits[i:i + 3] for i in range(head, len(digits), 3)]
    return NBSP.join(parts)


def _decimal(value: Any) -> decimal.Decimal:
    return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))


def number(value: Any, lang: str, places: int = 0) -> str:
    """Grouped number with ``places`` decimals (comma in Russian, point in English)."""
    if value is None:
        return DASH
    q = _decimal(value).quantize(decimal.Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_UP)
    sign = MINUS if q < 0 else ""
    whole, _, frac = f"{abs(q):f}".partition(".")
    text = group(whole)
    if places and frac:
        text += ("," if lang == "ru" else ".") + frac
    return sign + text


def smart_number(value: Any, lang: str) -> str:
    """Integers without decimals, other values with up to two."""
    if value is None:
        return DASH
    d = _decimal(value)
    return number(d, lang, 0 if d == d.to_integral_value() else 2)


def money(value: Any, lang: str, currency: str = "RUB") -> str:
    """``1 234 567 ₽``: whole units, rounded half up."""
    if value is None:
        return DASH
    return f"{number(value, lang, 0)}{NBSP}{currency_symbol(currency)}"


def percent(share: Any, lang: str, places: int = 1) -> str:
    """A share 0–1 as a percentage: ``45,5 %`` (Russian) / ``45.5%`` (English)."""
    if share is None:
        return DASH
    text = number(_decimal(share) * 100, lang, places)
    return f"{text}{NBSP}%" if lang == "ru" else f"{text}%"


def as_local(value: dt.datetime, tz: str) -> dt.datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(tz))


def date(value: Any, lang: str) -> str:
    if value is None:
        return DASH
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    return value.strftime("%d.%m.%Y" if lang == "ru" else "%Y-%m-%d")


def datetime(value: Any, lang: str, tz: str | None = None) -> str:
    if value is None:
        return DASH
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return date(value, lang)
    local = as_local(value, tz or default_timezone())
    return local.strftime("%d.%m.%Y %H:%M" if lang == "ru" else "%Y-%m-%d %H:%M")


def hours(value: Any, lang: str) -> str:
    if value is None:
        return DASH
    return f"{number(value, lang, 1)}{NBSP}{'ч' if lang == 'ru' else 'h'}"


def format_value(value: Any, fmt: str, lang: str, *, currency: str = "RUB", labels: dict | None = None,
                 tz: str | None = None) -> str:
    """Format one value by the format name used in page definitions."""
    if fmt == "money":
        return money(value, lang, currency)
    if fmt == "percent":
        return percent(value, lang)
    if fmt == "integer":
        return number(value, lang, 0)
    if fmt == "number":
        return smart_number(value, lang)
    if fmt == "date":
        return date(value, lang)
    if fmt == "datetime":
        return datetime(value, lang, tz)
    if fmt == "hours":
        return hours(value, lang)
    if fmt == "label":
        return label(value, lang, labels or {})
    return DASH if value is None else str(value)


def label(value: Any, lang: str, labels: dict) -> str:
    """A category value in words: the labels dictionary (``pages/_labels.yml``), else the value."""
    if value is None:
        return (labels.get("__null__") or {}).get(lang, DASH)
    found = labels.get(str(value))
    if found:
        return found.get(lang) or found.get("en") or str(value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


FORMATS = ("money", "percent", "integer", "number", "date", "datetime", "hours", "label", "text")
