"""Re-runs change nothing: every source loaded twice for the same day, or reloaded in full, leaves
raw contents identical to the first load (checksums without the load-metadata columns), and the
ledger balances after each run. The demo company at scale tiny is served by the emulators."""

from __future__ import annotations

import datetime as dt

import pytest
from support import RAW_SCHEMAS, SOURCES, checksums, ledger_balanced, load_source, start_stack

pytestmark = pytest.mark.integration

SCHEMA_OF = {"metrica": "raw_metrica", "amocrm": "raw_amocrm", "bitrix24": "raw_bitrix24",
             "typeform": "raw_surveys", "yandex_forms": "raw_surveys", "survey_files": "raw_surveys",
             "crm_files": "raw_crm_files"}
HISTORY_DAYS = 15  # one month of history keeps the default suite fast; the soak run loads it all


@pytest.fixture(scope="module")
def stack(demo_data):
    s = start_stack(demo_data)
    yield s
    s.stop()


def _history_start(stack) -> str:
    return (stack.today - dt.timedelta(days=HISTORY_DAYS)).isoformat()


@pytest.mark.parametrize("source", SOURCES)
def test_a_nightly_run_repeated_and_a_full_reload_leave_raw_contents_identical(stack, conn, source):
    day = stack.today
    start = _history_start(stack)
    load_source(stack, conn, source, day - dt.timedelta(days=1), start_date=start)  # first run: history
    load_source(stack, conn, source, day, start_date=start)  # the nightly run of D
    first = checksums(conn, [SCHEMA_OF[source]])
    assert first and sum(n for n, _ in first.values()) > 0, f"{source}: nothing landed"

    load_source(stack, conn, source, day, start_date=start)  # a retry / re-run of D
    assert checksums(conn, [SCHEMA_OF[source]]) == first

    load_source(stack, conn, source, day, full=True, start_date=start)  # an explicit full reload
    assert checksums(conn, [SCHEMA_OF[source]]) == first
    assert ledger_balanced(conn) == []


@pytest.mark.soak
def test_every_source_twice_in_one_warehouse_is_identical(stack, conn):
    """The whole history of every source side by side (surveys share one table): a second round
    for the same day changes nothing."""
    for source in SOURCES:
        load_source(stack, conn, source, stack.today)
    first = checksums(conn, RAW_SCHEMAS)
    assert {k.split(".")[0] for k in first} == set(RAW_SCHEMAS)
    for source in SOURCES:
        load_source(stack, conn, source, stack.today)
    assert checksums(conn, RAW_SCHEMAS) == first
    assert ledger_balanced(conn) == []
