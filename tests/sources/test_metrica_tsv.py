"""Metrica TSV handling: column names, line splitting, and escapes as PostgreSQL COPY reads them."""

from __future__ import annotations

import pytest
from customer_warehouse.sources.metrica.tsv import (
    escape,
    field_to_column,
    join_escaped_newlines,
    split_lines,
    to_copy_text,
    unescape,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# every example of docs/raw-layer.md
DOC_NAMES = {
    "ym:s:visitID": "visit_id", "ym:s:clientID": "client_id", "ym:s:dateTime": "date_time",
    "ym:s:startURL": "start_url", "ym:s:isNewUser": "is_new_user", "ym:s:pageViews": "page_views",
    "ym:s:visitDuration": "visit_duration", "ym:s:goalsID": "goals_id", "ym:s:purchaseRevenue": "purchase_revenue",
    "ym:s:regionCity": "region_city", "ym:s:deviceCategory": "device_category",
    "ym:s:lastsignTrafficSource": "lastsign_traffic_source", "ym:s:lastsignUTMSource": "lastsign_utm_source",
    "ym:s:lastsignUTMMedium": "lastsign_utm_medium", "ym:s:lastsignUTMCampaign": "lastsign_utm_campaign",
    "ym:s:lastsignUTMTerm": "lastsign_utm_term", "ym:pv:URL": "url", "ym:pv:watchID": "watch_id",
}


@pytest.mark.parametrize("field, column", DOC_NAMES.items())
def test_field_to_column_follows_the_raw_layer_contract(field, column):
    assert field_to_column(field) == column


def test_lines_split_across_chunks_and_only_on_line_feeds():
    chunks = [b"h1\th2\nab", b"c\td\r\n", b"", b"x\ty"]
    assert list(split_lines(chunks)) == [b"h1\th2", b"abc\td\r", b"x\ty"]


def test_escaped_line_feed_joins_the_record_and_keeps_numbering():
    lines = [b"a\tone\\", b"two", b"b\tend\\\\", b"c\tx"]  # the 3rd ends in an escaped backslash
    assert list(join_escaped_newlines(lines)) == [(1, b"a\tone\\ntwo"), (3, b"b\tend\\\\"), (4, b"c\tx")]


# text as Metrica writes it → what PostgreSQL must store (ClickHouse meaning, NUL kept visible)
CLICKHOUSE = {
    r"it\'s": "it's",
    r"a\tb\nc\\d": "a\tb\nc\\d",
    r"nul\0here": "nul\\0here",
    r"bell\a": "bell\x07",
    r"digit\1": "digit1",
    r"hex\x41": "hexA",
    r"high\xff": "high\\xff",
    "trailing\\": "trailing\\",
    "raw\rcr": "raw\rcr",
    "[1,2]": "[1,2]",
    "[,,x]": "[,,x]",
    r"['a','b\'c']": "['a','b'c']",
}


def _copy_roundtrip(wh, texts: list[str]) -> list[str | None]:
    wh.execute("create temp table t (n int, v text)")
    with wh.cursor() as cur, cur.copy("copy t (n, v) from stdin") as cp:
        for n, text in enumerate(texts):
            cp.write(f"{n}\t{to_copy_text(text)}\n")
    got = [r[0] for r in wh.execute("select v from t order by n").fetchall()]
    wh.execute("drop table t")
    return got


def test_metrica_escapes_reach_postgres_with_their_clickhouse_meaning(wh):
    assert _copy_roundtrip(wh, list(CLICKHOUSE)) == list(CLICKHOUSE.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30), min_size=1, max_size=20))
def test_any_text_escaped_like_metrica_survives_copy(wh, values):
    expected = [v.replace("\0", "\\0") for v in values]
    assert _copy_roundtrip(wh, [escape(v) for v in values]) == expected
    assert [unescape(escape(v)) for v in values] == values
