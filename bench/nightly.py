"""The nightly run as the bench drives it: emulators "as of" a day, then every stage in a child.

"One new day" needs the same company seen on two consecutive days. The generator shifts the
whole simulated history when ``--today`` moves (history starts ``today − 730`` days), so two
datasets with consecutive ``today`` are not one history extended by a day. Instead the bench
generates once with ``--today = new day + 1`` and serves it through the emulators with a
``today`` override: the full run sees the sources as of day D (nothing after D exists yet), each
later night as of its own day — exactly one more day of API data each. The CRM file exports are
plain files that the emulators do not serve; they already hold the dataset's last day in the full
run, which changes no volume (they are a full snapshot, reloaded whole every night).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from customer_warehouse.emulators import stack as emulator_stack
from customer_warehouse.emulators.server import BackgroundServer

from .procs import Measured, run_measured, say, tail

SOURCES = ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files")
#: the whole bench's nights: label → days after its --day
NIGHTS = (("full", 0), ("settling", 1), ("incremental", 2))
#: the dataset's last day (the generator's --today), which --next-day-from loads: days after --day
DATASET_DAYS = 3


def add_rates(run: dict[str, Any], raw_rows: int, mart_rows: int) -> None:
    """rows/s per stage: extract+load its landed rows, dbt and the gate the raw rows in the
    warehouse (their input), publish the mart rows."""
    for s in run["stages"]:
        if s["name"] in ("dbt_build", "gate"):
            s["rows"] = raw_rows
        elif s["name"] == "publish":
            s["rows"] = mart_rows
        if s.get("rows") is not None and s["seconds"]:
            s["rows_per_second"] = rate(s["rows"], s["seconds"])


def rate(rows: int, seconds: float) -> float:
    """rows/s, whole above 100; below, two decimals, so a stage that landed a handful of rows
    in a few seconds (the tiny next day) does not read as 0 rows/s."""
    per_second = rows / seconds
    return round(per_second) if per_second >= 100 else round(per_second, 2)


# The APIs' documented request rates (../shared/reference/sources.md): requests/s, the burst a
# fresh allowance lets through first, and how the vendor states it. The bench counts the requests
# each extract made and divides: the least time the real API would need for them, however fast
# our side is. Yandex Forms documents no rate (its floor is null).
DOCUMENTED_LIMITS: dict[str, tuple[float, int, str]] = {
    "metrica": (10.0, 0, "Logs API: 10 requests/s per IP"),
    "amocrm": (7.0, 0, "7 requests/s per account"),
    "bitrix24": (2.0, 50, "leaky bucket of 50 requests draining 2/s"),
    "typeform": (2.0, 0, "~2 requests/s"),
}
QUOTAS = ("lifted", "real")


def api_floor(source: str, requests: int | None) -> dict[str, Any]:
    """``api_requests`` and the time they need at the documented limit (requests beyond the burst
    / rate), for one source's extract."""
    out: dict[str, Any] = {"api_requests": requests, "api_floor_seconds_at_documented_limits": None}
    limit = DOCUMENTED_LIMITS.get(source)
    if requests is None:
        return out
    if limit is None:
        out["api_floor_reason"] = "no documented request rate"
        return out
    rate, burst, text = limit
    out["api_floor_seconds_at_documented_limits"] = round(max(0, requests - burst) / rate, 1)
    out["documented_limit"] = text
    return out


def _rss_mb() -> float | None:
    """This (the bench) process's resident memory now: the emulators live in it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def start_emulators(data_dir: Path, today: dt.date, quotas: str = "lifted") -> emulator_stack.Stack:
    """Every emulator on ``data_dir``, serving the sources as they were at the end of ``today``;
    ``quotas="lifted"`` starts them without their rate limits and processing delays."""
    if quotas not in QUOTAS:
        raise ValueError(f"quotas must be one of {QUOTAS}, not {quotas!r}")
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    stack = emulator_stack.Stack(data_dir, {**manifest, "today": today.isoformat()})
    options = getattr(emulator_stack, "DEMO_OPTIONS", {})
    lifted = emulator_stack.LIFTED_OPTIONS if quotas == "lifted" else {}
    warmed: dict[str, float] = {}
    for name, module in emulator_stack.EMULATORS.items():
        if not (data_dir / name).exists():
            continue
        kwargs: dict[str, Any] = {**options.get(name, {}), **lifted.get(name, {})}
        # Metrica's "today" is the API's (date2 must be before it): the day after the business day
        kwargs["today"] = today + dt.timedelta(days=1) if name == "metrica" else today
        app = importlib.import_module(module).create_app(data_dir, **kwargs)
        warm = getattr(app.state, "warm", None)
        if warm is not None:  # the emulator's own indexing is not the extract's time
            started = time.monotonic()
            warm()
            warmed[name] = round(time.monotonic() - started, 2)
        stack.servers[name] = BackgroundServer(app).start()
    stack.warm_seconds = warmed
    return stack


def _stage_argv(stage: str, day: dt.date, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.stage", stage, "--date", day.isoformat(), "--out", str(out), *extra]


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_nightly(label: str, day: dt.date, data_dir: Path, env: dict[str, str], work: Path,
                sources: tuple[str, ...] = SOURCES, after_transform=None, quotas: str = "lifted") -> dict[str, Any]:
    """Extract+load every source, dbt build, gate, publish — each measured; emulators as of ``day``.

    ``after_transform`` runs (unmeasured here) between a successful dbt build and the gate, while
    the build schema still exists — publish swaps it away. ``quotas``: "lifted" (emulators and
    clients unthrottled) or "real" (the documented limits, as the emulators enforce them).
    """
    rss_before = _rss_mb()
    stack = start_emulators(data_dir, day, quotas)
    env = {**env, **stack.connections(lifted=quotas == "lifted")}
    stages: list[Measured] = []
    emulator_rss: dict[str, Any] = {"bench_rss_mb_before_emulators": rss_before,
                                    "emulator_index_seconds_untimed": getattr(stack, "warm_seconds", {})}
    try:
        for source in sources:
            out = work / f"{label}-extract-{source}.json"
            say(f"{label}: extract+load {source} for {day}")
            server = stack.servers.get(source)
            requests_before = server.requests if server else None
            rss_stage_before = _rss_mb()
            before = resource.getrusage(resource.RUSAGE_SELF)
            m = run_measured(f"extract_load:{source}", _stage_argv("extract", day, out, "--source", source), env,
                             work / "logs" / f"{label}-extract-{source}.log")
            after = resource.getrusage(resource.RUSAGE_SELF)
            result = _read(out)
            # the emulators are threads of this process: their CPU is ours, not the stage's
            emulator_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            m.extra.update(rows=result.get("rows_loaded"), rows_quarantined=result.get("rows_quarantined"),
                           batches=result.get("batches"), emulator_cpu_seconds=round(emulator_cpu, 2),
                           rss_method="launcher")
            if server is not None:
                m.extra.update(api_floor(source, server.requests - requests_before))
                rss_after = _rss_mb()
                # the emulator builds its indexes lazily, during the first stage that reads it
                m.extra["emulator_rss_growth_mb"] = (round(rss_after - rss_stage_before, 1)
                                                     if rss_after is not None and rss_stage_before is not None
                                                     else None)
            stages.append(_checked(m, result))
        emulator_rss["bench_rss_mb_with_emulators"] = _rss_mb()
    finally:
        stack.stop()
    gate_file = work / f"{label}-gate.json"
    for stage, extra in (("transform", ()), ("gate", ()), ("publish", ("--gate", str(gate_file)))):
        out = gate_file if stage == "gate" else work / f"{label}-{stage}.json"
        say(f"{label}: {stage} for {day}")
        m = run_measured({"transform": "dbt_build"}.get(stage, stage), _stage_argv(stage, day, out, *extra), env,
                         work / "logs" / f"{label}-{stage}.log")
        result = _read(out)
        if stage == "transform":
            m.extra.update(timings=result.get("timings"), nodes=result.get("nodes"), slowest_nodes=result.get("slowest_nodes"))
        if stage == "gate":
            m.extra.update(passed=result.get("passed"), checks=_count_checks(result))
        stages.append(_checked(m, result))
        if not m.ok:
            break  # what follows a failed stage would only measure its failure
        if stage == "transform" and after_transform is not None:
            after_transform()
    extracts = [s for s in stages if s.name.startswith("extract")]
    api = {s.name.split(":", 1)[1]: {k: s.extra[k] for k in ("api_requests", "api_floor_seconds_at_documented_limits",
                                                             "documented_limit", "api_floor_reason") if k in s.extra}
           | {"extract_load_seconds": round(s.seconds, 3)}
           for s in extracts if "api_requests" in s.extra}
    if emulator_rss.get("bench_rss_mb_with_emulators") is not None and rss_before is not None:
        emulator_rss["emulators_rss_mb"] = round(emulator_rss["bench_rss_mb_with_emulators"] - rss_before, 1)
    return {"label": label, "day": day.isoformat(), "api_quotas": quotas, "api": api, "emulator_rss": emulator_rss,
            "stages": [s.as_dict() for s in stages],
            "seconds": round(sum(s.seconds for s in stages), 3),
            "ok": all(s.ok for s in stages) and len(stages) == len(sources) + 3,
            "extract_load_seconds": round(sum(s.seconds for s in stages if s.name.startswith("extract")), 3),
            # per stage through the launcher (bench/procs.py): the maximum over the extract+load stages
            "extract_load_peak_rss_mb": round(max(s.peak_rss_mb for s in extracts), 1) if extracts else None}


def _count_checks(result: dict[str, Any]) -> int | None:
    checks = result.get("checks") or result.get("results")
    return len(checks) if isinstance(checks, list | dict) else None


def _checked(m: Measured, result: dict[str, Any]) -> Measured:
    if not m.ok:
        m.extra["error"] = result.get("error") or tail(m.log, 5)
        say(f"  ✗ {m.name} failed after {m.seconds:.1f}s: {str(m.extra['error'])[:300]}")
    else:
        say(f"  ✓ {m.name}: {m.seconds:.1f}s, peak {m.peak_rss_mb:.0f} MB"
            + (f", {m.extra['rows']:,} rows" if m.extra.get("rows") is not None else ""))
    return m
