"""The legacy offline store's Excel export and the marketing spend sheet (``files/crm/``).

Russian-locale Excel CSV: cp1251, ``;``, CRLF, decimal comma with a space between thousands,
``dd.mm.yyyy`` dates (``dd.mm.yyyy hh:mm`` for moments). Columns are the minimal schema of the
raw layer (docs/raw-layer.md). Store customers who also shop online appear in amoCRM with the
same phone written differently (``8 (916) 123-45-67`` here, ``+79161234567`` there).
"""

from __future__ import annotations

import random
from pathlib import Path

from .. import ids
from ..model import Customer, Period
from .common import RuCsv, Sinks, ru_date, ru_datetime, ru_money

KINDS = {"call": ("звонок", "телефон"), "meeting": ("встреча", "шоурум"),
         "complaint": ("жалоба", "телефон"), "store_visit": ("визит", "шоурум")}
#: average cost per click by source (RUB), and by campaign where it differs (B2B keywords are
#: dear; the VK promos that bring deal hunters pay for reach); spend = billed clicks × CPC with
#: daily noise, and an ad network bills more clicks than Metrica records as visits (bounces before
#: the counter loads, in-app browsers, filtered robots), VK far more than Yandex
CPC = {"yandex": 38.0, "vk": 22.0}
CAMPAIGN_CPC = {"office_search": 300.0, "horeca_search": 350.0, "academy_search": 150.0, "hobby_search": 70.0,
                "gifts_search": 60.0, "gifts_search_vk": 95.0, "capsules_search": 55.0, "capsules_search_vk": 90.0}
BILLED_CLICKS_PER_VISIT = {"yandex": 1.5, "vk": 2.5}


class FilesWriter:
    def __init__(self, out: Path, period: Period, seed: int, sinks: Sinks | None = None):
        self.period, self.seed = period, seed
        sinks = sinks or Sinks()
        d = out / "files" / "crm"
        self.dir = d
        self.orders = sinks.csv(d / "orders.csv", ["order_id", "customer_id", "ordered_at", "amount", "status",
                                               "product", "quantity", "cost", "manager"])
        self.customers = sinks.csv(d / "customers.csv", ["customer_id", "name", "email", "phone", "city", "type"])
        self.spend: dict[tuple[str, str], int] = {}  # (utm_source, utm_campaign) -> kopecks
        self.interactions = sinks.csv(d / "interactions.csv", ["interaction_id", "customer_id", "occurred_at",
                                                           "channel", "kind", "manager", "note"])

    def customer(self, c: Customer) -> None:
        if not c.file_customer:
            return
        today = self.period.today_dt
        orders = [d for d in c.deals if d.system == "file" and d.closed < today]
        if not orders:
            return
        fid = ids.file_customer_id(c.index)
        p = c.main
        email = p.email if (c.index % 10) < 6 else ""
        style = 2 if c.index % 4 else 4
        self.customers.write([fid, f"{p.last} {p.first}", email, ids.phone_format(p.phone, style), c.city,
                              "физ. лицо"])
        for d in orders:
            self.orders.write([ids.file_order_id(c.index, d.k), fid, ru_datetime(d.closed), ru_money(d.amount_kop),
                               "won" if d.outcome == "won" else "cancelled", ", ".join(d.product_names),
                               str(sum(q for _, q in d.lines)), ru_money(d.cogs_kop), d.manager])
        for a in c.activities:
            if a.system == "file" and a.at < today and a.kind in KINDS:
                kind, channel = KINDS[a.kind]
                self.interactions.write([f"I{c.index * ids.PER_CUSTOMER + a.k:010d}", fid, ru_datetime(a.at), channel, kind,
                                         a.manager, a.text])

    def close(self, ad_clicks: dict[tuple, int]) -> dict[str, int]:
        costs = RuCsv(self.dir / "marketing_costs.csv", ["cost_date", "utm_source", "utm_medium", "utm_campaign",
                                                          "cost"])
        for key in sorted(ad_clicks):
            day, source, medium, campaign = key
            rng = random.Random(f"zernoipar-costs:{self.seed}:{day}:{campaign}")
            cpc = CAMPAIGN_CPC.get(campaign, CPC.get(source, 30.0))
            clicks = ad_clicks[key] * BILLED_CLICKS_PER_VISIT.get(source, 1.0)
            kopecks = round(clicks * cpc * rng.uniform(0.8, 1.25) * 100)
            self.spend[(source, campaign)] = self.spend.get((source, campaign), 0) + kopecks
            costs.write([ru_date(day), source, medium, campaign, ru_money(kopecks)])
        return {"files/crm/orders.csv": self.orders.close(), "files/crm/customers.csv": self.customers.close(),
                "files/crm/interactions.csv": self.interactions.close(),
                "files/crm/marketing_costs.csv": costs.close()}

