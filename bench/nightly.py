"""The nightly run as the bench drives it: emulators "as of" a day, then every stage in a child.

"One new day" needs the same company seen on two consecutive days. The generator shifts the
whole simulated history when ``--today`` moves (history starts ``today − 730`` days), so two
datasets with consecutive ``today`` are not one history extended by a day. Instead the bench
generates once with ``--today = incremental day + 1`` and serves it through the emulators with a
``today`` override: the full run sees the sources as of day D (nothing after D exists yet), the
incremental run as of D + 1 — exactly one more day of API data. The CRM file exports are plain
files that the emulators do not serve; they already hold D + 1 in the full run, which changes no
volume (they are a full snapshot, reloaded whole every night).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import resource
import sys
from pathlib import Path
from typing import Any

from customer_warehouse.emulators import stack as emulator_stack
from customer_warehouse.emulators.server import BackgroundServer

from .procs import Measured, run_measured, say, tail

SOURCES = ("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms", "crm_files", "survey_files")


def start_emulators(data_dir: Path, today: dt.date) -> emulator_stack.Stack:
    """Every emulator on ``data_dir``, serving the sources as they were at the end of ``today``."""
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    stack = emulator_stack.Stack(data_dir, {**manifest, "today": today.isoformat()})
    options = getattr(emulator_stack, "DEMO_OPTIONS", {})
    for name, module in emulator_stack.EMULATORS.items():
        if not (data_dir / name).exists():
            continue
        kwargs: dict[str, Any] = dict(options.get(name, {}))
        # Metrica's "today" is the API's (date2 must be before it): the day after the business day
        kwargs["today"] = today + dt.timedelta(days=1) if name == "metrica" else today
        app = importlib.import_module(module).create_app(data_dir, **kwargs)
        stack.servers[name] = BackgroundServer(app).start()
    return stack


def _stage_argv(stage: str, day: dt.date, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.stage", stage, "--date", day.isoformat(), "--out", str(out), *extra]


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def run_nightly(label: str, day: dt.date, data_dir: Path, env: dict[str, str], work: Path,
                sources: tuple[str, ...] = SOURCES, after_transform=None) -> dict[str, Any]:
    """Extract+load every source, dbt build, gate, publish — each measured; emulators as of ``day``.

    ``after_transform`` runs (unmeasured here) between a successful dbt build and the gate, while
    the build schema still exists — publish swaps it away.
    """
    stack = start_emulators(data_dir, day)
    env = {**env, **stack.connections()}
    stages: list[Measured] = []
    try:
        for source in sources:
            out = work / f"{label}-extract-{source}.json"
            say(f"{label}: extract+load {source} for {day}")
            before = resource.getrusage(resource.RUSAGE_SELF)
            m = run_measured(f"extract_load:{source}", _stage_argv("extract", day, out, "--source", source), env,
                             work / "logs" / f"{label}-extract-{source}.log")
            after = resource.getrusage(resource.RUSAGE_SELF)
            result = _read(out)
            # the emulators are threads of this process: their CPU is ours, not the stage's
            emulator_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            m.extra.update(rows=result.get("rows_loaded"), rows_quarantined=result.get("rows_quarantined"),
                           batches=result.get("batches"), emulator_cpu_seconds=round(emulator_cpu, 2))
            stages.append(_checked(m, result))
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
            m.extra.update(timings=result.get("timings"), nodes=result.get("nodes"))
        if stage == "gate":
            m.extra.update(passed=result.get("passed"), checks=_count_checks(result))
        stages.append(_checked(m, result))
        if not m.ok:
            break  # what follows a failed stage would only measure its failure
        if stage == "transform" and after_transform is not None:
            after_transform()
    return {"label": label, "day": day.isoformat(), "stages": [s.as_dict() for s in stages],
            "seconds": round(sum(s.seconds for s in stages), 3),
            "ok": all(s.ok for s in stages) and len(stages) == len(sources) + 3,
            "extract_load_seconds": round(sum(s.seconds for s in stages if s.name.startswith("extract")), 3),
            "extract_load_peak_rss_mb": max((s.peak_rss_mb for s in stages if s.name.startswith("extract")),
                                            default=None)}


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
