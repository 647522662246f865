"""Score the published marts against the demo's hidden truth.

Mart customers are matched to truth customers through their identity keys:
``marts.customer_source_keys(customer_id, source, source_key)`` joined to ``truth/keys.csv`` on
``(source, source_key)``. Each truth customer takes the mart customer sharing most keys with it, so
a split or over-merged identity costs accuracy instead of being silently forgiven. Then:

* JTBD — ``marts.customer_jobs(customer_id, job_id, confidence)``, ``job_id = 'unassigned'`` for
  none: accuracy among assigned truth customers, coverage = assigned / truth customers with a
  served purchase (leads that never bought are reported apart);
* churn — ``marts.customer_churn(customer_id, p_alive[, churn_probability, is_churned])``: rank AUC
  of ``churn_probability`` (else ``1 − p_alive``)
  against ``churned_in_holdout`` over truth customers with a served purchase, and precision in
  the top risk decile;
* profitability — ``Σ marts.customer_profitability.revenue`` against the truth's won revenue,
  exact to the kopeck, and the correlation of ``cost_to_serve`` with the true cost to serve.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

TARGETS = {"jtbd_accuracy": 0.90, "jtbd_coverage": 0.80, "churn_auc": 0.80, "churn_coverage": 0.80}


# --- truth ---------------------------------------------------------------------------------------

def normalize_key(source: str, key) -> str:
    """The key convention of docs/demo-company.md, applied to both sides so formatting never decides."""
    text = str(key).strip()
    if source == "email":
        return text.lower()
    if source == "phone":
        digits = re.sub(r"\D", "", text)
        if len(digits) == 11 and digits[0] == "8":
            digits = "7" + digits[1:]
        elif len(digits) == 10:
            digits = "7" + digits
        return digits
    return text


def load_truth(truth_dir: str | Path) -> dict:
    truth_dir = Path(truth_dir)
    with (truth_dir / "customers.csv").open(encoding="utf-8", newline="") as fh:
        customers = {row["customer_key"]: row for row in csv.DictReader(fh)}
    keys: dict[tuple[str, str], str] = {}
    with (truth_dir / "keys.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            keys[(row["source"], normalize_key(row["source"], row["source_key"]))] = row["customer_key"]
    reconciliation = json.loads((truth_dir / "reconciliation.json").read_text(encoding="utf-8"))
    return {"customers": customers, "keys": keys, "reconciliation": reconciliation}


# --- statistics ----------------------------------------------------------------------------------

def auc(labels: list[int], scores: list[float]) -> float | None:
    """Rank-based ROC AUC (Mann–Whitney U), ties getting average ranks; None without both classes."""
    from scipy.stats import rankdata

    n_pos = sum(labels)
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(scores)
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y)
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def top_decile_precision(labels: list[int], scores: list[float], names: list[str]) -> float | None:
    if not labels:
        return None
    k = math.ceil(len(labels) / 10)
    order = sorted(range(len(labels)), key=lambda i: (-scores[i], names[i]))
    return sum(labels[i] for i in order[:k]) / k


def _correlations(xs: list[float], ys: list[float]) -> dict:
    from scipy.stats import pearsonr, spearmanr

    if len(xs) < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return {"spearman": None, "pearson": None, "n": len(xs)}
    return {"spearman": float(spearmanr(xs, ys).statistic), "pearson": float(pearsonr(xs, ys).statistic),
            "n": len(xs)}


# --- marts ---------------------------------------------------------------------------------------

def _columns(conn, schema: str, table: str) -> set[str]:
    rows = conn.execute("select column_name from information_schema.columns where table_schema = %s "
                        "and table_name = %s", (schema, table)).fetchall()
    return {r[0] for r in rows}


def _select(conn, schema: str, table: str, wanted: list[str], optional: tuple[str, ...] = ()):
    """Rows of the mart as dicts, or an error text when the table or a required column is missing."""
    from psycopg import sql

    cols = _columns(conn, schema, table)
    if not cols:
        return None, f"{schema}.{table} does not exist"
    missing = [c for c in wanted if c not in cols]
    if missing:
        return None, f"{schema}.{table} lacks column(s) {', '.join(missing)}"
    names = wanted + [c for c in optional if c in cols]
    query = sql.SQL("select {} from {}").format(sql.SQL(", ").join(map(sql.Identifier, names)),
                                                 sql.Identifier(schema, table))
    return [dict(zip(names, row, strict=True)) for row in conn.execute(query)], None


# --- the evaluation ------------------------------------------------------------------------------

def _identity(truth: dict, key_rows: list[dict]) -> tuple[dict[str, str], dict]:
    """truth customer → its best mart customer, and identity-resolution figures."""
    overlap: dict[str, Counter] = defaultdict(Counter)
    truth_of_mart: dict[str, set] = defaultdict(set)
    matched_keys = 0
    for row in key_rows:
        source = str(row["source"])
        tkey = truth["keys"].get((source, normalize_key(source, row["source_key"])))
        if tkey is None:
            continue
        matched_keys += 1
        mart_id = str(row["customer_id"])
        overlap[tkey][mart_id] += 1
        truth_of_mart[mart_id].add(tkey)
    best = {t: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for t, c in overlap.items()}
    n_truth = len(truth["customers"])
    mart_customers = {str(r["customer_id"]) for r in key_rows}
    stats = {
        "truth_customers": n_truth,
        "mart_customers_with_keys": len(mart_customers),
        "mart_keys": len(key_rows),
        "mart_keys_matching_truth": matched_keys,
        "truth_customers_matched": sum(1 for t in truth["customers"] if t in best),
        "match_rate": (sum(1 for t in truth["customers"] if t in best) / n_truth) if n_truth else None,
        "truth_customers_split": sum(1 for c in overlap.values() if len(c) > 1),
        "mart_customers_merging_several": sum(1 for s in truth_of_mart.values() if len(s) > 1),
    }
    return best, stats


def _jtbd(truth: dict, best: dict[str, str], rows: list[dict]) -> dict:
    job_of: dict[str, tuple[str, float]] = {}
    for r in rows:
        mart_id, conf = str(r["customer_id"]), float(r["confidence"] or 0)
        if mart_id not in job_of or conf > job_of[mart_id][1]:
            job_of[mart_id] = (str(r["job_id"]), conf)
    confusion: dict[str, Counter] = defaultdict(Counter)
    assigned = correct = n = 0
    prospects = Counter()
    for tkey, row in truth["customers"].items():
        job = job_of.get(best.get(tkey, ""), ("unassigned", 0))[0]
        if int(row["served_purchases"]) < 1:  # a lead that never bought: reported, not scored
            prospects["customers"] += 1
            prospects["assigned"] += job != "unassigned"
            prospects["correct"] += job == row["true_job"]
            continue
        n += 1
        confusion[row["true_job"]][job] += 1
        if job != "unassigned":
            assigned += 1
            correct += job == row["true_job"]
    per_job = {}
    for true_job, got in sorted(confusion.items()):
        total = sum(got.values())
        given = sum(v for k, v in got.items() if k != "unassigned")
        per_job[true_job] = {"customers": total, "assigned": given,
                             "recall": got[true_job] / total if total else None,
                             "accuracy_among_assigned": got[true_job] / given if given else None}
    return {"customers": n, "assigned": assigned, "correct": correct,
            "accuracy": correct / assigned if assigned else None, "coverage": assigned / n if n else None,
            "prospects": dict(prospects), "per_job": per_job, "confusion": {k: dict(sorted(v.items())) for k, v in sorted(confusion.items())}}


def _churn_score(row: dict) -> float | None:
    """The mart's churn risk: ``churn_probability`` (no purchase within the churn horizon) when the
    mart has it, else 1 − p_alive."""
    value = row.get("churn_probability")
    if value is not None:
        return float(value)
    return None if row.get("p_alive") is None else 1.0 - float(row["p_alive"])


def _churn(truth: dict, best: dict[str, str], rows: list[dict]) -> dict:
    risk = {str(r["customer_id"]): _churn_score(r) for r in rows}
    p_alive = {str(r["customer_id"]): r["p_alive"] for r in rows}
    flags = {str(r["customer_id"]): r.get("churn_flag", r.get("is_churned")) for r in rows}
    alive_scores: list[float] = []
    labels, scores, names, flagged = [], [], [], []
    eligible = 0
    for tkey, row in truth["customers"].items():
        if int(row["served_purchases"]) < 1:
            continue
        eligible += 1
        mart_id = best.get(tkey)
        p = risk.get(mart_id) if mart_id else None
        if p is None or (isinstance(p, float) and math.isnan(p)):
            continue
        labels.append(int(row["churned_in_holdout"]))
        scores.append(p)
        alive = p_alive.get(mart_id)
        alive_scores.append(1.0 - float(alive) if alive is not None else 0.5)
        names.append(tkey)
        flagged.append(flags.get(mart_id))
    result = {"eligible": eligible, "scored": len(labels), "coverage": len(labels) / eligible if eligible else None,
              "base_rate": sum(labels) / len(labels) if labels else None,
              "auc": auc(labels, scores), "top_decile_precision": top_decile_precision(labels, scores, names),
              "score": "churn_probability" if rows and "churn_probability" in rows[0] else "1 - p_alive",
              "auc_of_1_minus_p_alive": auc(labels, alive_scores)}
    pairs = [(bool(f), y) for f, y in zip(flagged, labels, strict=True) if f is not None]
    if pairs:
        tp = sum(1 for f, y in pairs if f and y)
        result["flag_precision"] = tp / sum(1 for f, _ in pairs if f) if any(f for f, _ in pairs) else None
        result["flag_recall"] = tp / sum(1 for _, y in pairs if y) if any(y for _, y in pairs) else None
    return result


def _profitability(truth: dict, best: dict[str, str], rows: list[dict]) -> dict:
    total = sum((Decimal(str(r["revenue"])) for r in rows if r["revenue"] is not None), Decimal("0"))
    expected = Decimal(truth["reconciliation"]["total_won_revenue"])
    result = {"marts_revenue": f"{total:.2f}", "truth_revenue": f"{expected:.2f}",
              "difference": f"{total - expected:.2f}", "exact": total == expected,
              "truth_by_source": truth["reconciliation"]["won_revenue"]}
    if rows and "cost_to_serve" in rows[0]:
        cost = {str(r["customer_id"]): r["cost_to_serve"] for r in rows}
        xs, ys = [], []
        for tkey, row in truth["customers"].items():
            value = cost.get(best.get(tkey, ""))
            if value is not None:
                xs.append(float(value))
                ys.append(float(row["true_cost_to_serve"]))
        result["cost_to_serve"] = _correlations(xs, ys)
    return result


def evaluate(truth_dir: str | Path, warehouse_uri: str, schema: str = "marts") -> dict:
    """The full report as a JSON-ready dict (``report["passed"]`` is True when every target holds)."""
    import psycopg

    truth = load_truth(truth_dir)
    report: dict = {"schema": schema, "truth": str(truth_dir),
                    "truth_reconciliation": truth["reconciliation"]}
    with psycopg.connect(warehouse_uri) as conn:
        keys, err = _select(conn, schema, "customer_source_keys", ["customer_id", "source", "source_key"])
        best, report["identity"] = _identity(truth, keys or [])
        if err:
            report["identity"]["error"] = err
        jobs, err = _select(conn, schema, "customer_jobs", ["customer_id", "job_id", "confidence"])
        report["jtbd"] = {"error": err} if err else _jtbd(truth, best, jobs)
        churn, err = _select(conn, schema, "customer_churn", ["customer_id", "p_alive"],
                              ("churn_probability", "churn_flag", "is_churned"))
        report["churn"] = {"error": err} if err else _churn(truth, best, churn)
        prof, err = _select(conn, schema, "customer_profitability", ["customer_id", "revenue"], ("cost_to_serve",))
        report["profitability"] = {"error": err} if err else _profitability(truth, best, prof)
    report["targets"] = _targets(report)
    report["passed"] = all(t["passed"] for t in report["targets"])
    return report


def _targets(report: dict) -> list[dict]:
    j, c, p = report["jtbd"], report["churn"], report["profitability"]

    def at_least(value, bound) -> bool:
        return value is not None and value >= bound

    return [
        {"name": "JTBD accuracy", "target": f"≥ {TARGETS['jtbd_accuracy']:.2f} with coverage ≥ {TARGETS['jtbd_coverage']:.2f}",
         "value": {"accuracy": j.get("accuracy"), "coverage": j.get("coverage")},
         "passed": at_least(j.get("accuracy"), TARGETS["jtbd_accuracy"])
         and at_least(j.get("coverage"), TARGETS["jtbd_coverage"])},
        {"name": "Churn AUC", "target": f"≥ {TARGETS['churn_auc']:.2f} (scoring ≥ {TARGETS['churn_coverage']:.0%} of customers)",
         "value": {"auc": c.get("auc"), "coverage": c.get("coverage")},
         "passed": at_least(c.get("auc"), TARGETS["churn_auc"]) and at_least(c.get("coverage"), TARGETS["churn_coverage"])},
        {"name": "Revenue reconciliation", "target": "Σ revenue = won revenue, to the kopeck",
         "value": {"marts": p.get("marts_revenue"), "truth": p.get("truth_revenue")},
         "passed": bool(p.get("exact"))},
    ]


def _fmt(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def format_report(report: dict) -> str:
    """A human-readable summary (the JSON holds the detail: confusion matrix, per-job figures)."""
    ident, j, c, p = report["identity"], report["jtbd"], report["churn"], report["profitability"]
    lines = [f"Evaluation of schema {report['schema']} against {report['truth']}", "",
             "Identity: {matched}/{total} truth customers matched ({rate}); {split} split, {merged} over-merged".format(
                 matched=ident["truth_customers_matched"], total=ident["truth_customers"],
                 rate=_fmt(ident["match_rate"]), split=ident["truth_customers_split"],
                 merged=ident["mart_customers_merging_several"])]
    if ident.get("error"):
        lines.append(f"  ! {ident['error']}")
    if j.get("error"):
        lines.append(f"JTBD: ! {j['error']}")
    else:
        lines.append(f"JTBD: accuracy {_fmt(j['accuracy'])} over {j['assigned']} assigned, coverage {_fmt(j['coverage'])}")
        for job, s in j["per_job"].items():
            lines.append(f"  {job:<16} customers {s['customers']:>6}  recall {_fmt(s['recall'])}  "
                         f"accuracy {_fmt(s['accuracy_among_assigned'])}")
    if c.get("error"):
        lines.append(f"Churn: ! {c['error']}")
    else:
        lines.append(f"Churn: AUC {_fmt(c['auc'])}, top-decile precision {_fmt(c['top_decile_precision'])} "
                     f"(base rate {_fmt(c['base_rate'])}), scored {c['scored']}/{c['eligible']} by {c.get('score')}; "
                     f"AUC of 1 − p_alive {_fmt(c.get('auc_of_1_minus_p_alive'))}")
    if p.get("error"):
        lines.append(f"Profitability: ! {p['error']}")
    else:
        lines.append(f"Profitability: Σ revenue {p['marts_revenue']} vs truth {p['truth_revenue']} "
                     f"(difference {p['difference']})")
        if "cost_to_serve" in p:
            cts = p["cost_to_serve"]
            lines.append(f"  cost to serve vs truth: Spearman {_fmt(cts['spearman'])}, Pearson {_fmt(cts['pearson'])}"
                         f" over {cts['n']} customers")
    lines.append("")
    for t in report["targets"]:
        lines.append(f"[{'PASS' if t['passed'] else 'FAIL'}] {t['name']}: {t['target']} — "
                     + ", ".join(f"{k} {_fmt(v)}" for k, v in t["value"].items()))
    lines.append(f"Overall: {'PASS' if report['passed'] else 'FAIL'}")
    return "\n".join(lines)
