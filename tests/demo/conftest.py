"""One small demo company per test session (a few hundred customers), shared read-only by the tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pytest

TODAY = dt.date(2026, 11, 20)
CUSTOMERS = 400


@dataclass(frozen=True)
class Demo:
    served: Path
    truth: Path
    manifest: dict


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> Demo:
    from customer_warehouse.demo.generate import generate

    root = tmp_path_factory.mktemp("demo")
    manifest = generate(root / "served", seed=7, scale="tiny", today=TODAY, customers=CUSTOMERS, progress=False)
    return Demo(root / "served", root / "truth", manifest)
