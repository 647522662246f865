"""The hidden truth agrees with what is served, and the company behaves as the docs promise."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from customer_warehouse.demo import catalog
from customer_warehouse.demo.evaluate import auc, normalize_key
from scipy.stats import chi2_contingency


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _csv(path: Path, encoding="utf-8", delimiter=",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline=""), delimiter=delimiter))


def _truth(demo):
    customers = {r["customer_key"]: r for r in _csv(demo.truth / "customers.csv")}
    keys = _csv(demo.truth / "keys.csv")
    return customers, keys


def _ru_money(text: str) -> Decimal:
    return Decimal(text.replace(" ", "").replace(",", "."))


def test_at_least_six_jobs_and_demographics_do_not_reveal_them(demo):
    customers, _ = _truth(demo)
    rows = list(customers.values())
    jobs = Counter(r["true_job"] for r in rows)
    assert len(jobs) >= 6 and min(jobs.values()) >= 20
    assert {j.job_id for j in catalog.JOBS} == set(jobs)
    # job is independent of sex, age band and city (chi-square, fixed seed so no flakiness)
    for attribute in ("sex", "age_band", "city"):
        table = defaultdict(Counter)
        for r in rows:
            value = str(int(r["age"]) // 15) if attribute == "age_band" else r[attribute]
            table[value][r["true_job"]] += 1
        matrix = [[table[v][j] for j in sorted(jobs)] for v in sorted(table) if sum(table[v].values()) >= 30]
        assert chi2_contingency(matrix).pvalue > 0.001, attribute
    # lookalikes: the same (sex, age band, city) hires different jobs
    cells = defaultdict(set)
    for r in rows:
        cells[(r["sex"], int(r["age"]) // 15, r["city"])].add(r["true_job"])
    assert max(len(j) for j in cells.values()) >= 5
    assert {"0", "1"} == {r["is_b2b"] for r in rows}


def test_every_truth_key_is_served_and_identifies_one_customer(demo):
    customers, keys = _truth(demo)
    owners = defaultdict(set)
    for k in keys:
        owners[(k["source"], k["source_key"])].add(k["customer_key"])
    assert all(len(o) == 1 for o in owners.values())
    assert {k["customer_key"] for k in keys} == set(customers)
    by_source = defaultdict(set)
    for source, key in owners:
        by_source[source].add(key)
    assert set(by_source) == {"amocrm_contact", "amocrm_company", "bitrix24_contact", "bitrix24_company",
                              "crm_file_customer", "metrica_client_id", "email", "phone"}
    served = demo.served
    assert by_source["amocrm_contact"] == {str(c["id"]) for c in _jsonl(served / "amocrm" / "contacts.jsonl")}
    assert by_source["amocrm_company"] == {str(c["id"]) for c in _jsonl(served / "amocrm" / "companies.jsonl")}
    assert by_source["bitrix24_company"] == {c["ID"] for c in _jsonl(served / "bitrix24" / "companies.jsonl")}
    files = _csv(served / "files" / "crm" / "customers.csv", "cp1251", ";")
    assert by_source["crm_file_customer"] == {c["customer_id"] for c in files}
    visits = (next((served / "metrica").iterdir()) / "visits.tsv").read_text(encoding="utf-8").splitlines()
    clients = {line.split("\t")[2] for line in visits[1:]}
    assert by_source["metrica_client_id"] <= clients
    # store customers who also shop online: same phone, written differently in the two systems
    amo_phones = {}
    for c in _jsonl(served / "amocrm" / "contacts.jsonl"):
        raw = c["custom_fields_values"][0]["values"][0]["value"]
        amo_phones[normalize_key("phone", raw)] = raw
    shared = [f for f in files if normalize_key("phone", f["phone"]) in amo_phones]
    assert shared and all(f["phone"] != amo_phones[normalize_key("phone", f["phone"])] for f in shared)


def test_won_revenue_reconciles_to_the_kopeck_with_the_served_files(demo):
    recon = json.loads((demo.truth / "reconciliation.json").read_text(encoding="utf-8"))
    served = demo.served
    amo = sum(Decimal(lead["price"]) for lead in _jsonl(served / "amocrm" / "leads.jsonl") if lead["status_id"] == 142)
    b24 = sum(Decimal(d["OPPORTUNITY"]) for d in _jsonl(served / "bitrix24" / "deals.jsonl") if d["STAGE_ID"] == "WON")
    orders = _csv(served / "files" / "crm" / "orders.csv", "cp1251", ";")
    files = sum(_ru_money(o["amount"]) for o in orders if o["status"] == "won")
    assert recon["won_revenue"] == {"amocrm": f"{amo:.2f}", "bitrix24": f"{b24:.2f}", "crm_files": f"{files:.2f}"}
    assert Decimal(recon["total_won_revenue"]) == amo + b24 + files
    assert any(not o["amount"].endswith(",00") for o in orders)  # kopecks matter
    customers, _ = _truth(demo)
    assert sum(Decimal(r["served_revenue"]) for r in customers.values()) == amo + b24 + files


def test_surveys_are_noisy_the_way_the_docs_say(demo):
    customers, keys = _truth(demo)
    by_email = {k["source_key"]: k["customer_key"] for k in keys if k["source"] == "email"}
    answer_job = {j.survey_answer: j.job_id for j in catalog.JOBS}
    said = defaultdict(Counter)
    form_dir = next((demo.served / "typeform").iterdir())
    for item in _jsonl(form_dir / "responses.jsonl"):
        owner = by_email.get(normalize_key("email", item["hidden"]["email"])) if item["hidden"]["email"] else None
        if owner is None:
            continue
        label = next(a["choice"]["label"] for a in item["answers"] if a["field"]["ref"] == "purpose")
        said[customers[owner]["true_job"]][answer_job[label]] += 1
    noisy = sum(said[j]["home_espresso"] for j in ("daily_energy", "gift"))
    total = sum(sum(said[j].values()) for j in ("daily_energy", "gift"))
    assert total >= 20 and 0.08 <= noisy / total <= 0.45
    honest = sum(said[j][j] for j in said) / sum(sum(c.values()) for c in said.values())
    assert honest > 0.7


def test_churn_reasons_leave_traces_and_recency_predicts_churn(demo):
    customers, keys = _truth(demo)
    rows = [r for r in customers.values() if int(r["served_purchases"]) > 0]
    reasons = Counter(r["churn_reason"] for r in rows if r["churn_reason"])
    assert set(reasons) == {"need_disappeared", "dissatisfied", "competitor_price"}
    complaints = defaultdict(list)
    for r in rows:
        if r["churned_before_today"] == "1":  # a holdout churner's complaint may itself be in the holdout
            complaints[r["churn_reason"]].append(int(r["n_complaints"]) > 0)
    share = {k: sum(v) / len(v) for k, v in complaints.items()}
    assert share["dissatisfied"] == 1.0 and share["need_disappeared"] < 0.3
    # recency alone already ranks churners well (BG/NBD-like dropout)
    today = dt.datetime(2026, 11, 20)
    recency = [(today - dt.datetime.fromisoformat(r["last_purchase_at"])).days for r in rows]
    assert auc([int(r["churned_in_holdout"]) for r in rows], recency) > 0.75
    # competitor-price churners lost a deal on price (amoCRM loss reason 9001) before leaving
    contact_owner = {k["source_key"]: k["customer_key"] for k in keys if k["source"] == "amocrm_contact"}
    price_lost = {contact_owner[str(lead["_embedded"]["contacts"][0]["id"])]
                  for lead in _jsonl(demo.served / "amocrm" / "leads.jsonl") if lead["loss_reason_id"] == 9001}
    amo_competitor = [r["customer_key"] for r in rows if r["churn_reason"] == "competitor_price"
                      and r["crm"] == "amocrm" and r["churned_before_today"] == "1"]
    assert amo_competitor and sum(k in price_lost for k in amo_competitor) / len(amo_competitor) > 0.8


def test_products_carry_the_job(demo):
    """The CRM (most precise source) lets a simple product vote find the job for most customers."""
    customers, keys = _truth(demo)
    product_job = {p.name: j.job_id for j in catalog.JOBS for p in j.products}
    owner = {(k["source"], k["source_key"]): k["customer_key"] for k in keys}
    votes = defaultdict(Counter)
    for lead in _jsonl(demo.served / "amocrm" / "leads.jsonl"):
        who = owner[("amocrm_contact", str(lead["_embedded"]["contacts"][0]["id"]))]
        for tag in lead["_embedded"]["tags"]:
            votes[who][product_job[tag["name"]]] += 1
    for deal in _jsonl(demo.served / "bitrix24" / "deals.jsonl"):
        for part in re.sub(r"^Поставка: ", "", deal["TITLE"]).split("; "):
            votes[owner[("bitrix24_company", deal["COMPANY_ID"])]][product_job[part.rsplit(" x", 1)[0]]] += 1
    right = sum(c.most_common(1)[0][0] == customers[k]["true_job"] for k, c in votes.items())
    assert right / len(votes) > 0.9


def test_prospects_are_leads_lost_at_acquisition(demo):
    customers, keys = _truth(demo)
    prospects = {k for k, r in customers.items() if r["is_prospect"] == "1"}
    assert prospects and all(customers[k]["served_purchases"] == "0" for k in prospects)
    owner = {k["source_key"]: k["customer_key"] for k in keys if k["source"] == "amocrm_contact"}
    leads = _jsonl(demo.served / "amocrm" / "leads.jsonl")
    theirs = [lead for lead in leads if owner[str(lead["_embedded"]["contacts"][0]["id"])] in prospects]
    assert theirs and all(lead["pipeline_id"] == 7_310_001 and lead["status_id"] != 142 for lead in theirs)
