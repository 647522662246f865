"""A business with nothing but a CRM Excel export still gets every mart: staging stands in
empty relations for the missing amoCRM, Bitrix24, Metrica and survey tables."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from customer_warehouse.transform.dbt import build_all
from small_raw import MARTS, RUN_DATE, _files, dsn_from_uri

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def files_only(make_database, tmp_path_factory):
    uri = make_database("cwfiles")
    with psycopg.connect(uri) as conn:
        _files(conn)
    build_all(dsn_from_uri(uri), RUN_DATE, artifacts_dir=tmp_path_factory.mktemp("dbt"))
    return uri


def test_marts_from_files_alone(files_only):
    with psycopg.connect(files_only) as conn:
        def one(query):
            return conn.execute(query).fetchone()[0]

        for mart in MARTS:
            assert one(f"select count(*) from marts_build.{mart}") > 0, mart
        assert one("select count(*) from marts_build.customer_360") == 2
        assert one("select sum(revenue) from marts_build.customer_profitability") == Decimal("30000.55")
        assert one("select count(*) from marts_build.interaction_history") == 2
        assert one("select count(*) from marts_build.customer_source_keys where source like 'amocrm%'") == 0
