"""The results: ``bench/results/<scale>.json`` (+ ``latest.json``) and ``BENCHMARKS.md``.

Every headline key is a number or ``null`` with ``<key>_reason`` beside it; ``goals`` says for each
key its goal and whether this run met it (``null`` when the goal is not judged at this scale).
BENCHMARKS.md is rendered from every ``<scale>.json`` present, so it never holds a number that a
run did not produce; ``bench/NOTES.md`` (prose: method, findings) is appended as it is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCALE_ORDER = ("tiny", "demo", "small", "medium", "large")
#: the whole bench's nightly runs, in order (older results have no settling night)
NIGHT_LABELS = ("full", "settling", "incremental")

# key → (comparison, threshold, scale at which the goal is judged, or None for every scale)
GOALS: dict[str, tuple[str, float, str | None]] = {
    "loader_vs_psql_copy_ratio": ("<=", 1.3, None),
    "loader_vs_to_sql_speedup": (">=", 20, None),
    "incremental_vs_full_ratio": ("<=", 0.10, "large"),
    "full_nightly_seconds_large": ("<=", 1800, "large"),
    "incremental_nightly_seconds_large": ("<=", 180, "large"),
    "gx_share_of_nightly": ("<=", 0.10, None),
    "dag_parse_seconds": ("<", 0.5, None),
    "extract_load_peak_rss_mb": ("<=", 500, "large"),
}
REPORTED_ONLY = ("cosmos_vs_single_build_ratio",)


def headline_keys(scale: str) -> list[str]:
    keys = ["loader_vs_psql_copy_ratio", "loader_vs_to_sql_speedup", "incremental_vs_full_ratio",
            f"full_nightly_seconds_{scale}", f"incremental_nightly_seconds_{scale}", "full_nightly_seconds_large",
            "incremental_nightly_seconds_large", "gx_share_of_nightly", "dag_parse_seconds",
            "extract_load_peak_rss_mb", "cosmos_vs_single_build_ratio"]
    return list(dict.fromkeys(keys))


def _judge(value: float | None, op: str, threshold: float) -> bool | None:
    if value is None:
        return None
    return {"<=": value <= threshold, ">=": value >= threshold, "<": value < threshold}[op]


def goals(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scale = result["scale"]
    out: dict[str, dict[str, Any]] = {}
    for key, (op, threshold, at) in GOALS.items():
        value = result.get(key)
        verdict = _judge(value, op, threshold)
        entry: dict[str, Any] = {"goal": f"{op} {threshold}", "value": value, "pass": verdict}
        if at and at != scale:
            entry["judged_at"] = at
            entry["pass"] = None
            entry["note"] = f"goal applies at {at}; indicative at {scale}: " + (
                "would pass" if verdict else "would fail" if verdict is False else "not measured")
        elif value is None:
            entry["note"] = result.get(f"{key}_reason", "not measured")
        out[key] = entry
    for key in (*REPORTED_ONLY, f"full_nightly_seconds_{scale}", f"incremental_nightly_seconds_{scale}"):
        out.setdefault(key, {"goal": "reported", "value": result.get(key), "pass": None})
    return out


def write_json(result: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n"
    path = results_dir / f"{result['scale']}.json"
    path.write_text(text, encoding="utf-8")
    (results_dir / "latest.json").write_text(text, encoding="utf-8")
    return path


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _verdict(entry: dict[str, Any]) -> str:
    if entry["pass"] is True:
        return "✅ met"
    if entry["pass"] is False:
        return "❌ missed"
    return entry.get("note", "reported")


def _stage_rows(run: dict[str, Any]) -> list[str]:
    rows = []
    for s in run.get("stages", []):
        rate = s.get("rows_per_second")
        rows.append(f"| {s['name']} | {_fmt(s['seconds'], 1)} | {_fmt(s.get('rows'))} | {_fmt(rate)} | "
                    f"{_fmt(s['peak_rss_mb'], 0)} | {_fmt(s['cpu_seconds'], 1)} | {'ok' if s['ok'] else 'FAILED'} |")
    return rows


def _scale_section(r: dict[str, Any]) -> list[str]:
    scale = r["scale"]
    lines = [f"## Scale `{scale}`", "",
             f"Run {r['finished_at']} on the machine below; dataset seed {r['seed']}, full nightly for "
             f"{r['days']['full']}, "
             + (f"a settling night {r['days']['settling']} (reported, not a headline), " if 'settling' in r['days']
                else "") + f"one new day {r['days']['incremental']}.", ""]
    quotas = r.get("api_quotas")
    lines += [f"**API quotas: {quotas}.** " + r.get("api_quotas_note", "") if quotas else
              "**API quotas: real** (measured before `--api-quotas` existed: the extract times include the "
              "emulated vendors' rate limits).", ""]
    lines += ["| key | value | goal | verdict |", "|---|---|---|---|"]
    for key, entry in r["goals"].items():
        lines.append(f"| `{key}` | {_fmt(entry['value'], 3)} | {entry['goal']} | {_verdict(entry)} |")
    for key in headline_keys(scale):
        if key not in r["goals"]:
            lines.append(f"| `{key}` | {_fmt(r.get(key), 1)} | — | {r.get(key + '_reason', 'reported')} |")
    lines.append("")
    counts = r.get("counts", {})
    if counts:
        lines += ["Dataset and warehouse (rows):", ""]
        lines.append(", ".join(f"{k} {_fmt(v)}" for k, v in counts.items() if isinstance(v, int | float)))
        lines.append("")
    header = ["| stage | wall s | rows | rows/s | peak RSS MB | CPU s | status |", "|---|---|---|---|---|---|---|"]
    if r.get("generate"):
        lines += ["**Generate**", "", *header, *_stage_rows({"stages": [r["generate"]]}), ""]
    for label in NIGHT_LABELS:
        run = r.get("nightly", {}).get(label)
        if run:
            lines += [f"**{label.capitalize()} nightly** ({run['day']}; total {_fmt(run['seconds'], 1)} s, "
                      f"extract+load {_fmt(run['extract_load_seconds'], 1)} s)", "", *header, *_stage_rows(run), ""]
    lines += _api_section(r)
    details = r.get("details", {})
    if details:
        lines += ["<details><summary>Details (raw measurements)</summary>", "", "```json",
                  json.dumps(details, ensure_ascii=False, indent=1, default=str), "```", "", "</details>", ""]
    return lines


def _next_day_section(r: dict[str, Any]) -> list[str]:
    """``<scale>-next-day.json`` (bench/next_day.py): one more new day on a copy of a kept cluster."""
    run = r["nightly"]
    lines = [f"### Scale `{r['scale']}`: one more new day ({r['day']}, `--next-day-from`)", "",
             f"Run {r['finished_at']} at commit `{r.get('commit')}` on a copy of the cluster a whole bench run "
             f"kept after the day before; API quotas {r.get('api_quotas')}. Total "
             f"{_fmt(r.get('next_day_nightly_seconds'), 1)} s.", "",
             "| stage | wall s | rows | rows/s | peak RSS MB | CPU s | status |", "|---|---|---|---|---|---|---|",
             *_stage_rows(run), ""]
    nodes = r.get("slowest_nodes") or []
    if nodes:
        lines += ["Slowest dbt nodes: " + ", ".join(f"{n['node'].split('.')[-1]} {_fmt(n['seconds'], 1)} s"
                                                   for n in nodes[:10]) + ".", ""]
    return lines


def _api_section(r: dict[str, Any]) -> list[str]:
    """Requests per source in each extract stage and what they cost at the documented limits."""
    api = r.get("api") or {}
    sources = list(dict.fromkeys(src for run in api.values() for src in run))
    if not sources:
        return []
    labels = [label for label in NIGHT_LABELS if label in api]
    lines = ["**API requests and the documented quotas** — `api_floor_seconds_at_documented_limits` is the "
             "least time the real API would need for these requests at its documented rate (requests beyond "
             "the burst / rate), whatever our code does; with quotas lifted the measured extract time does "
             "not include it.", ""]
    head = "| source | documented limit | " + " | ".join(
        f"{label}: requests | {label}: floor s | {label}: extract s" for label in labels) + " |"
    lines += [head, "|---|---|" + "---|---|---|" * len(labels)]
    for src in sources:
        limit = next((run[src].get("documented_limit") or run[src].get("api_floor_reason")
                      for run in api.values() if src in run), None)
        cells = []
        for label in labels:
            e = api[label].get(src, {})
            cells += [_fmt(e.get("api_requests")), _fmt(e.get("api_floor_seconds_at_documented_limits"), 1),
                      _fmt(e.get("extract_load_seconds"), 1)]
        lines.append(f"| {src} | {limit or '—'} | " + " | ".join(cells) + " |")
    lines.append("")
    rss = {label: (r.get("nightly", {}).get(label) or {}).get("emulator_rss") for label in labels}
    shown = [f"{label} {_fmt(v.get('emulators_rss_mb'), 0)} MB (bench process {_fmt(v.get('bench_rss_mb_before_emulators'), 0)}"
             f" → {_fmt(v.get('bench_rss_mb_with_emulators'), 0)} MB)" for label, v in rss.items() if v]
    if shown:
        lines += ["Emulators' memory (they run as threads of the bench process; RSS growth while they served "
                  "the extracts): " + "; ".join(shown) + ".", ""]
    return lines


def render_markdown(results_dir: Path, notes: Path | None) -> str:
    found = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in results_dir.glob("*.json")
             if p.stem in SCALE_ORDER}
    runs = [found[s] for s in SCALE_ORDER if s in found and s != "tiny"] or [found[s] for s in found]
    lines = ["# Benchmarks", "",
             "Generated by `make bench SCALE=<scale>` (`python -m bench --scale <scale>`) from "
             "`bench/results/<scale>.json`; do not edit by hand. Method and findings follow the tables.", ""]
    if runs:
        m = runs[-1]["machine"]
        lines += ["## Machine", "",
                  f"- CPU: {m['cpu_model']}, {m['cores']} cores; RAM {m['ram_gb']} GB; {m['os']}",
                  f"- load average when the run started: {', '.join(map(str, m['load_average_at_start']))} "
                  "(the machine is shared with other work)",
                  f"- PostgreSQL {m['postgresql']} (embedded pgserver), settings: "
                  + ", ".join(f"{k}={v}" for k, v in m["postgresql_settings"].items()),
                  f"- Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v), ""]
        lines += ["## Summary", "", "| key | " + " | ".join(r["scale"] for r in runs) + " | goal |",
                  "|---|" + "---|" * len(runs) + "---|"]
        keys = list(dict.fromkeys(k for r in runs for k in headline_keys(r["scale"])))
        for key in keys:
            goal = GOALS.get(key)
            cells = []
            for r in runs:
                entry = r["goals"].get(key)
                mark = {True: " ✅", False: " ❌"}.get(entry["pass"] if entry else None, "")
                cells.append(_fmt(r.get(key), 3) + mark if key in r else "—")
            goal_text = f"{goal[0]} {goal[1]}" + (f" (at {goal[2]})" if goal and goal[2] else "") if goal else "reported"
            lines.append(f"| `{key}` | " + " | ".join(cells) + f" | {goal_text} |")
        lines.append("| `api_quotas` | " + " | ".join(r.get("api_quotas") or "real (before the switch)" for r in runs)
                     + " | lifted: our pipeline measured; real: the vendors' pacing |")
        lines += ["", "✅/❌ only where the goal is judged at that scale; other cells are indicative.", ""]
    for r in runs:
        lines += _scale_section(r)
        next_day = results_dir / f"{r['scale']}-next-day.json"
        if next_day.exists():
            lines += _next_day_section(json.loads(next_day.read_text(encoding="utf-8")))
    if notes and notes.exists():
        lines += [notes.read_text(encoding="utf-8").rstrip(), ""]
    return "\n".join(lines) + "\n"
