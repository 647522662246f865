"""Per-model Airflow tasks (astronomer-cosmos) against one ``dbt build``, measured.

Cosmos renders the dbt project as one Airflow task per node; with local execution every task is
its own process that starts dbt, parses (partially) and runs one node: ``dbt seed``/``snapshot``
``--select`` the node, ``dbt run --select`` a model, then ``dbt test --select`` it when it has
tests (cosmos's default ``TestBehavior.AFTER_EACH``). The bench replays exactly that sequence of
invocations, each in a fresh process, in dependency order, with the churn fit between the two
phases as in ``transform.dbt.build_all``, and compares the sum with the single-build stage of
the same day on the same data. Airflow's own per-task overhead (scheduling, task start-up,
~1–3 s each) is not included, so the ratio is a lower bound.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from customer_warehouse.paths import state_dir

from .procs import run_measured, say

CHURN_TAG = "churn_scored"


def _manifest(dbname: str) -> dict[str, Any]:
    path = state_dir(".artifacts") / "dbt" / dbname / "target" / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _order(nodes: dict[str, dict], parents: dict[str, list[str]]) -> list[str]:
    done: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen:
            return
        seen.add(uid)
        for parent in parents.get(uid, []):
            if parent in nodes:
                visit(parent)
        done.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return done


def _descendants(roots: set[str], children: dict[str, list[str]]) -> set[str]:
    out, todo = set(roots), list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def invocations(dbname: str) -> list[tuple[str, list[str]]]:
    """``(phase, dbt args)`` per cosmos task, in an order that respects dependencies."""
    manifest = _manifest(dbname)
    kinds = ("model", "seed", "snapshot")
    nodes = {uid: n for uid, n in manifest["nodes"].items()
             if n["resource_type"] in kinds and n.get("package_name") == manifest["metadata"].get("project_name",
                                                                                                   n.get("package_name"))}
    tested = {dep for n in manifest["nodes"].values() if n["resource_type"] == "test"
              for dep in n.get("depends_on", {}).get("nodes", [])}
    tested |= {u.get("model") for u in manifest.get("unit_tests", {}).values()}
    tested |= {dep for u in manifest.get("unit_tests", {}).values()
               for dep in u.get("depends_on", {}).get("nodes", [])}
    scored = _descendants({uid for uid, n in nodes.items() if CHURN_TAG in n.get("tags", [])}, manifest["child_map"])
    out = []
    for uid in _order(nodes, manifest["parent_map"]):
        node = nodes[uid]
        phase = "scored" if uid in scored else "base"
        verb = {"seed": "seed", "snapshot": "snapshot"}.get(node["resource_type"], "run")
        out.append((phase, [verb, "--select", node["name"]]))
        if node["resource_type"] == "model" and (uid in tested or node["name"] in tested):
            out.append((phase, ["test", "--select", node["name"]]))
    return [i for i in out if i[0] == "base"] + [i for i in out if i[0] == "scored"]


def per_node_build(dbname: str, day: str, env: dict[str, str], work: Path, sample: int = 0) -> dict[str, Any]:
    """Run every cosmos task's dbt invocation (or the first ``sample`` of them and extrapolate)."""
    plan = invocations(dbname)
    chosen = plan if not sample or sample >= len(plan) else plan[:: -(-len(plan) // sample)]  # spread over both phases
    say(f"cosmos-style per-node run: {len(chosen)} of {len(plan)} dbt invocations, one process each")
    seconds: list[float] = []
    failed: list[str] = []
    fit_done = False
    for i, (phase, args) in enumerate(chosen, start=1):
        if phase == "scored" and not fit_done:
            fit = _stage(["churn_fit"], day, env, work, "cosmos-churn-fit")
            fit_seconds, fit_done = fit.seconds, True
        m = _stage(["dbt", "--dbt-args", " ".join(args)], day, env, work, f"cosmos-{i:03d}-{args[0]}-{args[2]}")
        seconds.append(m.seconds)
        if not m.ok:
            failed.append(" ".join(args))
        if i % 10 == 0:
            say(f"  … {i}/{len(chosen)} invocations, {sum(seconds):.0f}s so far")
    if not fit_done:
        fit = _stage(["churn_fit"], day, env, work, "cosmos-churn-fit")
        fit_seconds = fit.seconds
    if failed:
        raise RuntimeError(f"{len(failed)} per-node dbt invocation(s) failed, e.g. {failed[0]}; see {work}/logs/cosmos")
    measured = sum(seconds)
    total = measured if len(chosen) == len(plan) else statistics.mean(seconds) * len(plan)
    return {"invocations": len(plan), "measured_invocations": len(chosen), "estimated": len(chosen) < len(plan),
            "seconds": round(total + fit_seconds, 3), "invocation_seconds_median": round(statistics.median(seconds), 3),
            "churn_fit_seconds": round(fit_seconds, 3), "failed": failed[:10]}


def _stage(args: list[str], day: str, env: dict[str, str], work: Path, name: str):
    argv = [sys.executable, "-m", "bench.stage", args[0], "--date", day, *args[1:]]
    return run_measured(name, argv, env, work / "logs" / "cosmos" / f"{name}.log")
