"""The true profit of every demo customer and the true whale curve, from the truth folder alone.

    profit = served revenue − cost of goods − true cost to serve − acquisition cost

Cost of goods is at list price × (1 − the product's gross margin of ``product_catalog.csv``), cost
to serve is activity counts × the rates of ``activity_rates.csv`` (``catalog.ACTIVITY_RATES``), and
a customer's acquisition cost is their acquiring campaign's spend per acquired customer
(``truth/campaigns.csv``). The whale curve sorts customers by profit, descending, and plots
cumulative profit as a share of the total: a realistic business peaks well above 100 %.
"""

from __future__ import annotations

import csv
from pathlib import Path


def truth_profits(truth_dir: str | Path) -> dict[str, float]:
    """``customer_key -> profit`` (RUB) for every customer of ``truth/customers.csv``."""
    truth_dir = Path(truth_dir)
    per_customer: dict[str, float] = {}
    campaigns = truth_dir / "campaigns.csv"
    if campaigns.exists():
        with campaigns.open(encoding="utf-8", newline="") as fh:
            per_customer = {row["campaign"]: float(row["cost_per_customer"]) for row in csv.DictReader(fh)}
    profits: dict[str, float] = {}
    with (truth_dir / "customers.csv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            acquisition = per_customer.get(row.get("acquisition_campaign") or "", 0.0)
            profits[row["customer_key"]] = (float(row["served_revenue"]) - float(row["served_cogs"])
                                            - float(row["true_cost_to_serve"]) - acquisition)
    return profits


def whale_curve_peak(profits) -> float:
    """The highest cumulative share of total profit, customers sorted by profit descending."""
    values = sorted(profits, reverse=True)
    total = sum(values)
    if total <= 0:
        raise ValueError("total profit is not positive: the whale curve is undefined")
    running = peak = 0.0
    for value in values:
        running += value
        peak = max(peak, running / total)
    return peak


def truth_whale_peak(truth_dir: str | Path) -> float:
    return whale_curve_peak(truth_profits(truth_dir).values())
