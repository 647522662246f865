"""The demo company is realistic about profit: a minority of customers destroys a large share of it.

Computed from the truth files alone (no database): profit = revenue − cost of goods − true cost to
serve − acquisition cost, with the rates and margins of the dbt seeds.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from customer_warehouse.demo import catalog
from customer_warehouse.demo.profit import truth_profits, whale_curve_peak

SEEDS = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds"


def _csv(path: Path, encoding="utf-8", delimiter=",") -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_bytes().decode(encoding), newline=""), delimiter=delimiter))


def test_truth_whale_curve_rises_well_above_100_percent(demo):
    profits = truth_profits(demo.truth)
    peak = whale_curve_peak(profits.values())
    # real businesses peak at roughly 130–250 %; the band is wider so a small sample is never flaky
    assert 1.15 <= peak <= 3.5, peak
    losers = [p for p in profits.values() if p < 0]
    assert 0.15 <= len(losers) / len(profits) <= 0.6
    assert sum(profits.values()) > 0


def test_cost_to_serve_heavy_profiles_are_the_ones_losing_money(demo):
    customers = _csv(demo.truth / "customers.csv")
    profits = truth_profits(demo.truth)
    by_profile: dict[str, list[float]] = defaultdict(list)
    for row in customers:
        if row["is_prospect"] == "0":
            by_profile[row["service_profile"]].append(profits[row["customer_key"]])
    assert set(by_profile) <= set(catalog.SERVICE_PROFILES)

    def losing(name: str) -> float:
        return sum(p < 0 for p in by_profile[name]) / len(by_profile[name])

    assert losing("small_frequent") > 0.7
    assert losing("deal_hunter") > 0.5
    assert losing("standard") < 0.35


def test_truth_uses_the_seed_rates_and_the_served_marketing_spend(demo):
    rates = {r["activity"]: float(r["rate_rub"]) for r in _csv(SEEDS / "activity_rates.csv")}
    assert all(rates[kind] == rate for kind, rate in catalog.ACTIVITY_RATES.items())
    margins = {r["product"]: float(r["gross_margin"]) for r in _csv(SEEDS / "product_catalog.csv")}
    assert all(margins[p.name] == p.margin for job in catalog.JOBS for p in job.products)
    columns = {"call": "n_calls", "meeting": "n_meetings", "email": "n_emails", "delivery": "n_deliveries",
               "complaint": "n_complaints", "store_visit": "n_store_visits"}
    for row in _csv(demo.truth / "customers.csv"):
        cost = sum(int(row[col]) * rates[kind] for kind, col in columns.items())
        assert abs(cost - float(row["true_cost_to_serve"])) < 0.005, row["customer_key"]

    costs = _csv(demo.served / "files" / "crm" / "marketing_costs.csv", "cp1251", ";")
    served = defaultdict(Decimal)
    for c in costs:
        served[c["utm_campaign"]] += Decimal(c["cost"].replace(" ", "").replace(",", "."))
    campaigns = _csv(demo.truth / "campaigns.csv")
    assert {c["campaign"]: Decimal(c["spend"]) for c in campaigns if Decimal(c["spend"])} == dict(served)
    acquired = defaultdict(int)
    for row in _csv(demo.truth / "customers.csv"):
        if row["acquisition_campaign"]:
            acquired[row["acquisition_campaign"]] += 1
    assert {c["campaign"]: int(c["customers_acquired"]) for c in campaigns if int(c["customers_acquired"])} == acquired
    # paid acquisition matters: B2B campaigns cost thousands of roubles per customer they bring
    per_customer = {c["campaign"]: float(c["cost_per_customer"]) for c in campaigns}
    assert per_customer.get("office_search", 0) > 3000 or per_customer.get("horeca_search", 0) > 3000
