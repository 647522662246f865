"""The reliability suite's fixtures, the ``--soak`` switch, and the fault table it produces.

Long tests (several dbt builds, 30 nightly runs of every source) are marked ``soak`` and run only
with ``--soak`` (``make soak``). Every test that injects a fault appends its outcome to
``.artifacts/reliability/faults.jsonl``; at the end of the session the latest outcome of each test
is rendered into docs/reliability.md, so the document says what the suite last saw, not what
someone once wrote.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).parent))

import support  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--soak", action="store_true", default=False,
                     help="also run the long reliability tests (marked soak)")


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: long reliability runs; skipped unless --soak is given")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--soak", default=False):
        return
    skip = pytest.mark.skip(reason="soak test: run with --soak (make soak)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # xdist worker: the controller renders once
        return
    if support.FAULTS_LOG.exists():
        render_doc(support.FAULTS_LOG, support.DOC)


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """The tiny demo company (seed 7), generated once per session, served read-only."""
    from customer_warehouse.demo.generate import generate

    root = tmp_path_factory.mktemp("reliability-demo")
    generate(root / "data", seed=7, scale="tiny", progress=False)
    return root / "data"


@pytest.fixture()
def demo_copy(demo_data, tmp_path) -> Path:
    """A private copy of the demo folder, for tests that edit what the sources serve."""
    target = tmp_path / "data"
    shutil.copytree(demo_data, target)
    return target


@pytest.fixture()
def conn(warehouse_uri):
    with psycopg.connect(warehouse_uri) as c:
        yield c


@pytest.fixture()
def fault_record(request):
    """``fault_record(fault, source=…, injected=…, retried=…, recovered=…, failed_loudly=…)``."""

    def record(fault: str, **kw) -> None:
        support.record_fault(request.node.nodeid, fault, **kw)

    return record


# -- the document ------------------------------------------------------------------------------
HEADER = """# Reliability: faults tried and what happened

This file is **generated** by the reliability suite (`tests/reliability/`); do not edit it by
hand. Each test that injects a fault appends its outcome to `.artifacts/reliability/faults.jsonl`;
the session-finish hook in `tests/reliability/conftest.py` keeps the latest outcome of each test
and renders the tables below. Run `.venv/bin/python -m pytest tests/reliability -q` (fast part)
or `make soak` (adds the long runs) to refresh it.

Columns: **injected** = faults the emulator (or the test) actually fired; **retried** = extra
requests the client sent because of them, as the emulator counted them (for loud failures: the
requests sent after the first fault, which should be none); **recovered** = runs that ended with
data identical (checksums) to a clean run; **failed loudly** = runs that stopped with an error
naming the source and the cause, leaving the previous data intact.
"""


FOOTER = """
## What else the suite checks

| guarantee | test file | default run | soak run |
|---|---|---|---|
| a source re-run for the same day, or fully reloaded, leaves identical raw contents (checksums without load metadata) | `test_idempotency.py` | every source, one month of history | every source side by side, whole history |
| the whole pipeline twice for the same day publishes identical marts | `test_pipeline_soak.py` | — | extract_load → dbt → gate → publish, twice |
| a load SIGKILLed mid-COPY / with its batch open shows nothing; the rerun equals a clean run | `test_crash_safety.py` | CRM export mid-COPY, amoCRM mid-page | — |
| dbt SIGKILLed mid-build: BI keeps yesterday's marts, the half-built schema is not published, the rerun equals a clean run | `test_pipeline_soak.py` | — | yes |
| hostile input lands verbatim or is quarantined with its reason; the ledger balances; `drop table x` drops nothing | `test_hostile_input.py` | SQL-like names, 10 MB fields, NUL, wrong encodings, malformed rows, quoted headers / mapping meanings / field lists | — |
| parsers are total and round-trip (hypothesis) | `test_parser_properties.py` | values, CRM records, CSV locales, Metrica TSV chunking | — |
| a backfill equals the nightly runs it replaces | `test_backfill.py` | 3 days, raw layer | 30 days, raw layer and the final day's marts |
| late changes are picked up by the lookback | `test_late_data.py` | amoCRM lead, Bitrix24 deal, Metrica visit | — |

Known gaps are kept as `xfail(strict=True)` tests, so a fix shows up as an unexpected pass:
CRM ids beyond `bigint` (or `1e999`) abort the whole amoCRM / Bitrix24 batch instead of being
quarantined (`test_hostile_input.py`).
"""


def latest_outcomes(path: Path) -> list[dict]:
    rows: dict[tuple, dict] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        rows[(row["test"], row["fault"], row["source"])] = row
    return sorted(rows.values(), key=lambda r: (r["fault"], r["source"], r["test"]))


def render_doc(log: Path, doc: Path) -> None:
    rows = latest_outcomes(log)
    totals: dict[tuple, dict] = defaultdict(lambda: {"tests": 0, "injected": 0, "retried": 0, "recovered": 0,
                                                     "failed_loudly": 0})
    for r in rows:
        t = totals[(r["fault"], r["source"])]
        t["tests"] += 1
        t["injected"] += r["injected"]
        t["retried"] += r["retried"]
        t["recovered"] += int(r["recovered"])
        t["failed_loudly"] += int(r["failed_loudly"])
    lines = [HEADER, "## Per fault and source", "",
             "| fault | source | tests | injected | retried | recovered | failed loudly |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for (fault, source), t in sorted(totals.items()):
        lines.append(f"| {fault} | {source} | {t['tests']} | {t['injected']} | {t['retried']} | "
                     f"{t['recovered']} | {t['failed_loudly']} |")
    lines += ["", "## Per test", "", "| test | fault | source | outcome | note |", "|---|---|---|---|---|"]
    for r in rows:
        outcome = "recovered" if r["recovered"] else "failed loudly" if r["failed_loudly"] else "NEITHER"
        test = r["test"].split("tests/reliability/")[-1]
        note = str(r.get("note", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{test}` | {r['fault']} | {r['source']} | {outcome} | {note} |")
    doc.write_text("\n".join(lines) + "\n" + FOOTER, encoding="utf-8")
