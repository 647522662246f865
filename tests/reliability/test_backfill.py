"""A backfill equals the nightly runs it replaces: from the same history (up to D-n), loading days
D-n+1 … D one by one as nightly runs gives the same raw layer as loading everything up to D as
one history run. The default run checks three days; the soak run checks 30 days (and, in
test_pipeline_soak.py, the marts built on both).

The history starts a week before the first day so that the nightly runs' lookback (2–3 days)
stays inside it; reaching before a history's start is the lookback's job, not a difference."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from support import RAW_SCHEMAS, SOURCES, checksums, ledger_balanced, load_source, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(demo_data):
    s = start_stack(demo_data)
    yield s
    s.stop()


@pytest.fixture()
def second_warehouse(make_database):
    """Another empty warehouse beside ``conn``'s, for the other way of loading the same days."""
    uri = make_database("cwbackfill")
    with psycopg.connect(uri) as c:
        yield c


LEAD_IN = 7  # days of history before the first nightly run, beyond every lookback


def nightly(stack, conn, start: dt.date, first: dt.date, last: dt.date) -> None:
    """History up to the day before ``first``, then one nightly run per day."""
    day = first - dt.timedelta(days=1)
    while day <= last:
        for source in SOURCES:
            load_source(stack, conn, source, day, start_date=start.isoformat())
        day += dt.timedelta(days=1)


def backfill(stack, conn, start: dt.date, last: dt.date) -> None:
    for source in SOURCES:
        load_source(stack, conn, source, last, start_date=start.isoformat())


def assert_backfill_equals_nightly(stack, conn, other, days: int) -> None:
    last = stack.today - dt.timedelta(days=1)  # Metrica cannot export "today"
    first = last - dt.timedelta(days=days - 1)
    start = first - dt.timedelta(days=LEAD_IN)
    nightly(stack, conn, start, first, last)
    backfill(stack, other, start, last)
    by_night, at_once = checksums(conn, RAW_SCHEMAS), checksums(other, RAW_SCHEMAS)
    differing = sorted(k for k in set(by_night) | set(at_once) if by_night.get(k) != at_once.get(k))
    assert differing == [], {k: (by_night.get(k), at_once.get(k)) for k in differing}
    assert sum(n for n, _ in by_night.values()) > 0
    assert ledger_balanced(conn) == [] and ledger_balanced(other) == []


def test_three_days_backfilled_equal_three_nightly_runs(stack, conn, second_warehouse):
    assert_backfill_equals_nightly(stack, conn, second_warehouse, 3)


@pytest.mark.soak
def test_thirty_days_backfilled_equal_thirty_nightly_runs(stack, conn, second_warehouse):
    assert_backfill_equals_nightly(stack, conn, second_warehouse, 30)
