"""The evaluator on marts built from the truth itself, where the right scores are known."""

from __future__ import annotations

import csv
import json
import random
from decimal import Decimal

import psycopg
import pytest
from customer_warehouse.demo.__main__ import main
from customer_warehouse.demo.evaluate import auc, evaluate, top_decile_precision


def _truth_rows(demo):
    with (demo.truth / "customers.csv").open(encoding="utf-8", newline="") as fh:
        customers = list(csv.DictReader(fh))
    with (demo.truth / "keys.csv").open(encoding="utf-8", newline="") as fh:
        keys = list(csv.DictReader(fh))
    return customers, keys


def _build_marts(uri: str, demo, *, p_alive=None, job=None, revenue_shift=Decimal("0")) -> None:
    """A marts schema that mirrors the truth (mart customer ``m<key>``), with optional distortions."""
    customers, keys = _truth_rows(demo)
    p_alive = p_alive or (lambda r: 0.0 if r["churned_in_holdout"] == "1" else 1.0)
    job = job or (lambda r: r["true_job"])
    with psycopg.connect(uri) as conn:
        conn.execute("create schema marts")
        conn.execute("create table marts.customer_source_keys (customer_id text, source text, source_key text)")
        conn.execute("create table marts.customer_jobs (customer_id text, job_id text, confidence numeric)")
        conn.execute("create table marts.customer_churn (customer_id text, p_alive double precision, churn_flag boolean)")
        conn.execute("create table marts.customer_profitability (customer_id text, revenue numeric(18,2), "
                     "cost_to_serve numeric(18,2))")
        with conn.cursor() as cur:
            cur.executemany("insert into marts.customer_source_keys values (%s, %s, %s)",
                            [("m" + k["customer_key"], k["source"], k["source_key"]) for k in keys])
            cur.executemany("insert into marts.customer_jobs values (%s, %s, 0.9)",
                            [("m" + r["customer_key"], job(r)) for r in customers])
            cur.executemany("insert into marts.customer_churn values (%s, %s, %s)",
                            [("m" + r["customer_key"], p_alive(r), p_alive(r) < 0.5) for r in customers])
            rows = [("m" + r["customer_key"], Decimal(r["served_revenue"]), Decimal(r["true_cost_to_serve"]))
                    for r in customers]
            rows[0] = (rows[0][0], rows[0][1] + revenue_shift, rows[0][2])
            cur.executemany("insert into marts.customer_profitability values (%s, %s, %s)", rows)


def test_auc_is_rank_based_with_ties():
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    assert auc([1, 1], [0.1, 0.2]) is None
    assert top_decile_precision([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [9, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5],
                                list("abcdefghijk")) == 0.5


def test_perfect_marts_pass_every_target(demo, make_database):
    uri = make_database("demoeval")
    _build_marts(uri, demo)
    report = evaluate(demo.truth, uri)
    assert report["identity"]["match_rate"] == 1.0
    assert report["identity"]["truth_customers_split"] == 0
    assert report["jtbd"]["accuracy"] == 1.0 and report["jtbd"]["coverage"] == 1.0
    assert report["jtbd"]["prospects"]["customers"] > 0  # leads that never bought: reported apart
    assert report["churn"]["auc"] == 1.0 and report["churn"]["top_decile_precision"] == 1.0
    assert report["churn"]["flag_precision"] == 1.0 and report["churn"]["flag_recall"] == 1.0
    assert report["profitability"]["exact"] is True
    assert report["profitability"]["cost_to_serve"]["spearman"] == pytest.approx(1.0)
    assert report["passed"] and all(t["passed"] for t in report["targets"])


def test_reversed_random_and_wrong_marts_score_accordingly(demo, make_database):
    rng = random.Random(11)
    reversed_uri, random_uri = make_database("demoeval"), make_database("demoeval")
    _build_marts(reversed_uri, demo, p_alive=lambda r: 1.0 if r["churned_in_holdout"] == "1" else 0.0,
                 job=lambda r: "unassigned" if r["customer_key"] < "C0000200" else "gift",
                 revenue_shift=Decimal("0.01"))
    bad = evaluate(demo.truth, reversed_uri)
    assert bad["churn"]["auc"] == 0.0
    assert bad["profitability"]["exact"] is False and bad["profitability"]["difference"] == "0.01"
    assert bad["jtbd"]["coverage"] < 0.6 and bad["jtbd"]["accuracy"] < 0.5
    assert not bad["passed"] and not any(t["passed"] for t in bad["targets"])
    _build_marts(random_uri, demo, p_alive=lambda r: rng.random())
    noise = evaluate(demo.truth, random_uri)
    assert 0.4 < noise["churn"]["auc"] < 0.6
    assert [t["passed"] for t in noise["targets"]] == [True, False, True]


def test_missing_marts_fail_with_a_reason_and_the_cli_writes_json(demo, make_database, tmp_path, capsys):
    uri = make_database("demoeval")
    out = tmp_path / "report.json"
    assert main(["evaluate", "--truth", str(demo.truth), "--warehouse-uri", uri, "--json", str(out)]) == 0
    assert main(["evaluate", "--truth", str(demo.truth), "--warehouse-uri", uri, "--strict"]) == 1
    printed = capsys.readouterr().out
    assert "[FAIL] JTBD accuracy" in printed and "marts.customer_jobs does not exist" in printed
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["passed"] is False and report["identity"]["match_rate"] == 0.0
