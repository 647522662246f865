"""Fixtures of the transform tests: the small raw dataset of small_raw.py in a fresh database."""

from __future__ import annotations

import pytest
from small_raw import load_small_raw


@pytest.fixture(scope="module")
def small_warehouse(make_database):
    """A fresh database with the small raw dataset; returns its URI."""
    uri = make_database("cwdbt")
    load_small_raw(uri)
    return uri
