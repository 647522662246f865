"""The hidden ground truth: who each customer really is, and the figures the marts must reproduce.

``customers.csv`` holds the latent facts (job, churn in the holdout and why, true cost to serve)
next to what was served; ``keys.csv`` says how every source identifies the customer, in the
``(source, source_key)`` convention of ``marts.customer_source_keys``; ``reconciliation.json``
holds won revenue per source to the kopeck; ``campaigns.csv`` holds each paid campaign's spend and the
customers it acquired, so the true acquisition cost of a customer is their campaign's spend per
acquired customer (profit = revenue − cost of goods − cost to serve − acquisition cost). Plain UTF-8 CSV: this is for the evaluator, not a source.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .. import catalog as C
from .. import ids
from ..model import Customer, Period
from .common import Sinks, money_text

CUSTOMER_COLUMNS = [
    "customer_key", "true_job", "is_b2b", "is_prospect", "crm", "in_crm_files", "web", "city", "sex", "age", "satisfaction",
    "price_sensitive", "first_purchase_at", "last_purchase_at", "served_purchases", "served_revenue",
    "served_cogs", "n_calls", "n_meetings", "n_emails", "n_deliveries", "n_complaints", "n_store_visits", "true_cost_to_serve",
    "churned_before_today", "churned_in_holdout", "churn_date", "churn_reason", "holdout_purchases",
    "holdout_revenue", "service_profile", "acquisition_campaign",
]
CAMPAIGN_COLUMNS = ["campaign", "utm_source", "spend", "customers_acquired", "cost_per_customer"]


class TruthWriter:
    def __init__(self, truth: Path, period: Period, sinks: Sinks | None = None):
        sinks = sinks or Sinks()
        self.dir, self.period = truth, period
        plain = {"encoding": "utf-8", "delimiter": ",", "eol": "\n"}
        self.customers = sinks.csv(truth / "customers.csv", CUSTOMER_COLUMNS, **plain)
        self.keys = sinks.csv(truth / "keys.csv", ["customer_key", "source", "source_key"], **plain)
        self.revenue: Counter = Counter()
        self.won: Counter = Counter()
        self.acquired: Counter = Counter()  # paid campaign -> customers it acquired
        self.n_customers = self.n_keys = 0

    def _served_keys(self, c: Customer) -> list[tuple[str, str]]:
        today = self.period.today_dt
        served = {s: [d for d in c.deals if d.system == s and d.served(self.period)] for s in ("amocrm", "bitrix24")}
        file_orders = [d for d in c.deals if d.system == "file" and d.closed < today]
        keys: list[tuple[str, str]] = []
        if c.crm == "amocrm" and served["amocrm"]:
            keys += [("amocrm_contact", str(ids.amo_contact_id(c.index, p.j))) for p in c.persons]
            if c.is_b2b:
                keys.append(("amocrm_company", str(ids.amo_company_id(c.index))))
        if c.crm == "bitrix24" and served["bitrix24"]:
            keys += [("bitrix24_contact", str(ids.b24_contact_id(c.index, p.j))) for p in c.persons]
            keys.append(("bitrix24_company", str(ids.b24_company_id(c.index))))
        if c.file_customer and file_orders:
            keys.append(("crm_file_customer", ids.file_customer_id(c.index)))
        for slot, cid in enumerate(c.client_ids):
            if any(v.client_slot == slot and v.at < today for v in c.visits):
                keys.append(("metrica_client_id", cid))
        return keys

    def customer(self, c: Customer) -> None:
        keys = self._served_keys(c)
        if not keys:
            return  # never visible in any source before today
        keys += [("email", p.email.strip().lower()) for p in c.persons]
        keys += [("phone", p.phone) for p in c.persons]
        if c.is_b2b:
            keys.append(("phone", ids.phone_digits(c.index * ids.CONTACTS_PER_CUSTOMER + 3)))
        for source, key in keys:
            self.keys.write([c.key, source, key])
        self.n_keys += len(keys)
        self.n_customers += 1
        self.customers.write(self._row(c))

    def _acquisition_campaign(self, c: Customer) -> str:
        """The UTM campaign of the customer's first visit before today, else of their first deal."""
        today = self.period.today_dt
        visits = [v for v in c.visits if v.at < today]
        if visits:
            first = min(visits, key=lambda v: (v.at, v.k))
            return first.utm[2] if first.utm else ""
        deals = [d for d in c.deals if d.system != "file" and d.served(self.period) and d.deleted_at is None]
        if deals:
            first_deal = min(deals, key=lambda d: (d.created, d.k))
            return first_deal.utm[2] if first_deal.utm else ""
        return ""

    def _row(self, c: Customer) -> list:
        today, end = self.period.today_dt, self.period.holdout_end_dt
        won = [d for d in c.deals if d.outcome == "won" and d.deleted_at is None]
        served = [d for d in won if d.closed < today]
        holdout = [d for d in won if today <= d.closed < end]
        for d in served:
            self.revenue[d.system] += d.amount_kop
            self.won[d.system] += 1
        acts = Counter(a.kind for a in c.activities if a.at < today)
        deliveries = sum(1 for d in served if d.system != "file")
        acts["delivery"] = deliveries
        cost = sum(acts[kind] * rate for kind, rate in C.ACTIVITY_RATES.items())
        churned = c.churn_date is not None
        # Churned in the holdout = had dropped out and so made no purchase in it; a customer who
        # still bought in the holdout was active, whatever happened afterwards.
        churned_in_holdout = churned and not holdout
        campaign = self._acquisition_campaign(c)
        if campaign:
            self.acquired[campaign] += 1
        return [
            c.key, c.job.job_id, int(c.is_b2b), int(c.prospect), c.crm, int(c.file_customer), int(c.web), c.city, c.main.sex,
            c.main.age, c.satisfaction, int(c.price_sensitive),
            served[0].closed.isoformat(sep=" ") if served else "", served[-1].closed.isoformat(sep=" ") if served else "",
            len(served), money_text(sum(d.amount_kop for d in served)), money_text(sum(d.cogs_kop for d in served)),
            acts["call"], acts["meeting"], acts["email"], deliveries, acts["complaint"], acts["store_visit"],
            f"{cost:.2f}",
            int(churned and c.churn_date < today), int(churned_in_holdout),
            c.churn_date.date().isoformat() if churned else "",
            c.churn_reason or "", len(holdout), money_text(sum(d.amount_kop for d in holdout)),
            c.profile.name, campaign,
        ]

    def merge(self, revenue: Counter, won: Counter, n_customers: int, n_keys: int, acquired: Counter) -> None:
        """Add a worker's totals."""
        self.revenue.update(revenue)
        self.won.update(won)
        self.acquired.update(acquired)
        self.n_customers += n_customers
        self.n_keys += n_keys

    def close(self, extra: dict | None = None, spend: dict[tuple[str, str], int] | None = None) -> dict[str, int]:
        """``spend``: kopecks per ``(utm_source, utm_campaign)`` before today (what marketing_costs.csv holds)."""
        self.customers.close()
        self.keys.close()
        spend = spend or {}
        campaigns = {campaign: source for source, campaign in spend} | {
            campaign: "" for campaign in self.acquired if campaign not in {c for _, c in spend}}
        with (self.dir / "campaigns.csv").open("w", encoding="utf-8", newline="") as fh:
            fh.write(",".join(CAMPAIGN_COLUMNS) + "\n")
            for campaign in sorted(campaigns):
                kopecks = sum(k for (_, name), k in spend.items() if name == campaign)
                n = self.acquired[campaign]
                per = money_text(round(kopecks / n)) if n else "0.00"
                fh.write(f"{campaign},{campaigns[campaign]},{money_text(kopecks)},{n},{per}\n")
        sources = {"amocrm": "amocrm", "bitrix24": "bitrix24", "file": "crm_files"}
        reconciliation = {
            "currency": C.CURRENCY,
            "won_revenue": {sources[s]: money_text(self.revenue[s]) for s in sources},
            "won_deals": {sources[s]: self.won[s] for s in sources},
            "total_won_revenue": money_text(sum(self.revenue.values())),
            "rule": "amoCRM leads in status 142 (not deleted) + Bitrix24 deals in a stage with SEMANTICS S "
                    "+ orders.csv rows with status won; all closed before today",
            **(extra or {}),
        }
        (self.dir / "reconciliation.json").write_text(json.dumps(reconciliation, ensure_ascii=False, indent=2) + "\n",
                                                      encoding="utf-8")
        return {"truth/customers.csv": self.n_customers, "truth/keys.csv": self.n_keys,
                "truth/campaigns.csv": len(campaigns)}
