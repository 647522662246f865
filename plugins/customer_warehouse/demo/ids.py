"""Identifiers and contact details derived from a customer's index, never from shared state.

Every id is a pure function of the customer's index (and a small per-customer counter), so chunks
can be generated independently and in any order while ids stay unique and stable across scales.
Random-looking ids (Metrica visit/client ids, phone numbers) use a multiplicative bijection, which
is unique by construction instead of by luck.
"""

from __future__ import annotations

import datetime as dt

from .catalog import TRANSLIT, UTC_OFFSET_HOURS

PER_CUSTOMER = 1024  # room for deals, notes, tasks, activities of one customer
CONTACTS_PER_CUSTOMER = 4
_MASK63 = (1 << 63) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_EPOCH = dt.datetime(1970, 1, 1)


def scramble63(n: int) -> int:
    """A bijection on [0, 2^63): consecutive inputs give unrelated-looking outputs."""
    return (n * _GOLDEN) & _MASK63


def scramble9(n: int) -> int:
    """A bijection on [0, 10^9) (the multiplier is coprime with 10)."""
    return (n * 387_420_489 + 123_456_789) % 1_000_000_000


def unix(local: dt.datetime) -> int:
    """Unix time of a naive Moscow wall-clock datetime."""
    return int((local - _EPOCH).total_seconds()) - UTC_OFFSET_HOURS * 3600


def iso_msk(local: dt.datetime) -> str:
    """Bitrix24 style: ``2025-03-01T14:05:00+03:00``."""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"+{UTC_OFFSET_HOURS:02d}:00"


# --- per-entity ids ---------------------------------------------------------------------------

def amo_contact_id(index: int, j: int) -> int:
    return 30_000_000 + index * CONTACTS_PER_CUSTOMER + j


def amo_company_id(index: int) -> int:
    return 50_000_000 + index


def amo_lead_id(index: int, k: int) -> int:
    return 20_000_000 + index * PER_CUSTOMER + k


def amo_sub_id(index: int, k: int) -> int:
    """Notes and tasks (separate id spaces per entity in amoCRM)."""
    return 100_000_000 + index * PER_CUSTOMER + k


def b24_id(index: int, k: int) -> int:
    """Deals and activities: Bitrix24 ids start at 1."""
    return 1 + index * PER_CUSTOMER + k


def b24_contact_id(index: int, j: int) -> int:
    return 1 + index * CONTACTS_PER_CUSTOMER + j


def b24_company_id(index: int) -> int:
    return 1 + index


def file_customer_id(index: int) -> str:
    return f"K{100_000 + index:07d}"


def file_order_id(index: int, k: int) -> str:
    return f"Z{index * PER_CUSTOMER + k:010d}"


def visit_id(index: int, k: int) -> int:
    return scramble63(index * 8192 + k + 1)


def client_id(first_visit: dt.datetime, n: int) -> str:
    """A Metrica ClientID / ``_ym_uid``: the first visit's unix time and nine more digits."""
    return f"{unix(first_visit)}{scramble9(n):09d}"


# --- contact details -------------------------------------------------------------------------

def phone_digits(contact_gidx: int) -> str:
    """Canonical phone ``79XXXXXXXXX``: unique per contact."""
    return "79" + f"{scramble9(contact_gidx):09d}"


def phone_format(digits: str, style: int) -> str:
    """The same number as different systems and people write it."""
    d = digits[1:]  # ten digits after the country code
    code, a, b, c = d[:3], d[3:6], d[6:8], d[8:10]
    return (
        f"+7{d}",
        f"+7 {code} {a}-{b}-{c}",
        f"8 ({code}) {a}-{b}-{c}",
        f"+7 ({code}) {a}-{b}-{c}",
        f"8{d}",
    )[style % 5]


def email_for(last: str, first: str, contact_gidx: int, domain: str) -> str:
    return f"{last.lower().translate(TRANSLIT)}.{first.lower().translate(TRANSLIT)[:1]}{contact_gidx}@{domain}"
