"""Smoke test of the benchmark suite: the whole bench at a very small scale, then its JSON.

It runs the real thing (generator, emulators, loaders, dbt, GX gate, publish, psql, pandas) on
60 customers, so it takes minutes on a busy machine and is marked slow; the numbers themselves
are not judged (no timing assertions), only that every headline key was measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from bench import report

ROOT = Path(__file__).resolve().parents[2]

MEASURED = ("loader_vs_psql_copy_ratio", "loader_vs_to_sql_speedup", "incremental_vs_full_ratio",
            "full_nightly_seconds_tiny", "incremental_nightly_seconds_tiny", "gx_share_of_nightly",
            "dag_parse_seconds", "extract_load_peak_rss_mb", "cosmos_vs_single_build_ratio")
LARGE_ONLY = ("full_nightly_seconds_large", "incremental_nightly_seconds_large")


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@pytest.mark.slow
def test_bench_tiny_writes_every_key(tmp_path):
    """The whole bench, then one more day on a copy of the cluster it kept (--next-day-from)."""
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "bench", "--scale", "tiny", "--customers", "60", "--cosmos-sample", "2",
           "--results-dir", str(results), "--markdown", str(tmp_path / "BENCHMARKS.md"),
           "--work-dir", str(tmp_path / "work"), "--data-dir", str(tmp_path / "demo"),
           "--db-name", f"bench_smoke_{uuid.uuid4().hex[:8]}", "--pgdata", str(tmp_path / "pg"), "--keep-databases"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]

    data = json.loads((results / "latest.json").read_text(encoding="utf-8"))
    assert data["scale"] == "tiny"
    missing = {k: data.get(f"{k}_reason") for k in MEASURED if not _is_number(data.get(k))}
    assert not missing, missing
    for key in LARGE_ONLY:
        assert data[key] is None and data[f"{key}_reason"] == "not measured at this scale"

    assert all(data["nightly"][label]["ok"] for label in ("full", "settling", "incremental"))
    assert [data["days"][label] for label in ("full", "settling", "incremental")] == [
        "2026-11-18", "2026-11-19", "2026-11-20"]
    stages = {s["name"] for s in data["nightly"]["full"]["stages"]}
    assert {"extract_load:metrica", "extract_load:amocrm", "dbt_build", "gate", "publish"} <= stages
    for stage in data["nightly"]["full"]["stages"]:
        assert _is_number(stage["seconds"]) and _is_number(stage["peak_rss_mb"]) and stage["peak_rss_mb"] > 0
    assert data["counts"]["warehouse_raw_rows_after_full"] > 0
    assert data["machine"]["cores"] >= 1 and data["machine"]["postgresql"]

    # quotas lifted by default, and what the documented ones would cost is still reported
    assert data["api_quotas"] == "lifted" and "without rate limits" in data["api_quotas_note"]
    for label in ("full", "incremental"):
        api = data["api"][label]
        assert {"metrica", "amocrm", "bitrix24", "typeform", "yandex_forms"} <= set(api), api
        assert api["amocrm"]["api_requests"] > 0 and api["bitrix24"]["api_requests"] > 0
        assert api["amocrm"]["api_floor_seconds_at_documented_limits"] == round(api["amocrm"]["api_requests"] / 7, 1)
        assert api["bitrix24"]["api_floor_seconds_at_documented_limits"] == round(
            max(0, api["bitrix24"]["api_requests"] - 50) / 2, 1)
        assert api["yandex_forms"]["api_floor_seconds_at_documented_limits"] is None  # no documented rate
        extracts = [st for st in data["nightly"][label]["stages"] if st["name"].startswith("extract_load:")]
        assert all(st["rss_method"] == "launcher" for st in extracts)
        assert data["nightly"][label]["extract_load_peak_rss_mb"] == max(st["peak_rss_mb"] for st in extracts)
    # the full run walks the history: more amoCRM requests than the one new day
    assert data["api"]["full"]["amocrm"]["api_requests"] > data["api"]["incremental"]["amocrm"]["api_requests"]
    assert data["extract_load_peak_rss_mb"] == round(max(data["nightly"][label]["extract_load_peak_rss_mb"]
                                                         for label in ("full", "incremental")), 1)
    assert _is_number(data["emulators_rss_mb"])

    for key in (*MEASURED, *LARGE_ONLY):
        if key != "cosmos_vs_single_build_ratio":
            assert data["goals"][key]["pass"] in (True, False, None), key
    assert data["goals"]["dag_parse_seconds"]["pass"] in (True, False)  # judged at every scale
    markdown = (tmp_path / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert "## Scale `tiny`" in markdown and "**API quotas: lifted.**" in markdown
    amo = data["api"]["full"]["amocrm"]
    assert f"| amocrm | 7 requests/s per account | {amo['api_requests']:,} |" in markdown

    # one more day on a copy of the kept cluster; the kept one is only read
    kept = sorted(p.name for p in (tmp_path / "pg").iterdir())
    next_day = [*cmd[:cmd.index("--pgdata")], "--next-day-from", str(tmp_path / "pg"), "--pgdata", str(tmp_path / "pg2")]
    proc = subprocess.run(next_day, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    day = json.loads((results / "tiny-next-day.json").read_text(encoding="utf-8"))
    assert day["day"] == "2026-11-21" and day["nightly"]["ok"] and _is_number(day["next_day_nightly_seconds"])
    assert {"extract_load:amocrm", "dbt_build", "gate", "publish"} <= set(day["stage_seconds"])
    assert all(s["rows_per_second"] > 0 for s in day["nightly"]["stages"] if s.get("rows"))
    # a warehouse in service: the history mart built on the copy the publication before left
    transform = next(s for s in day["nightly"]["stages"] if s["name"] == "dbt_build")
    assert '"marts_prev"."interaction_history" into marts_build' in Path(transform["log"]).read_text(encoding="utf-8")
    assert day["nightly"]["raw_rows"] >= data["counts"]["warehouse_raw_rows_after_incremental"]
    assert json.loads((results / "latest.json").read_text(encoding="utf-8"))["scale"] == "tiny"  # untouched
    assert sorted(p.name for p in (tmp_path / "pg").iterdir()) == kept and not (tmp_path / "pg2").exists()
    assert "next day 2026-11-21 at tiny" in proc.stdout
    rendered = report.render_markdown(results, None)
    assert "### Scale `tiny`: one more new day (2026-11-21" in rendered
    assert f"Total {day['next_day_nightly_seconds']:,.1f} s." in rendered
