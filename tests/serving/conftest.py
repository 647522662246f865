"""Fixtures of the dashboard tests: one small published marts database per test module, read
through a uniquely named bi_reader role that is dropped afterwards."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from customer_warehouse.publish import roles
from dashboard_marts import build


@pytest.fixture(scope="module")
def published(make_database):
    """``(uri, prefix)`` of a database with a published ``marts`` and ``<prefix>bi_reader``."""
    uri = make_database("cwdash")
    prefix = f"cwd{uuid.uuid4().hex[:8]}_"
    with psycopg.connect(uri) as conn:
        build(conn, prefix)
    yield uri, prefix
    with psycopg.connect(uri, autocommit=True) as conn:
        roles.drop_roles(conn, prefix)


@pytest.fixture(scope="module")
def bi_role(published) -> str:
    return f"{published[1]}bi_reader"
