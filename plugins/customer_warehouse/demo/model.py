"""The simulation: one customer's life, from first purchase to churn, as source-neutral events.

A customer is drawn with a job to be done (which fixes products, phrases, cadence, margin and
service profile), demographics drawn *independently* of the job, a CRM that holds their deals,
latent satisfaction and price sensitivity. Purchases follow the BG/NBD story (a customer buys at
their own rate and may drop out after each purchase), so churn is learnable from recency and
frequency; complaints and lost-on-price deals raise the dropout risk and give the reason.

The simulation runs past ``today`` into a holdout period; writers serve only what happened
before ``today`` and the truth writer records the rest. Nothing here knows any source's format.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import math
import random
from dataclasses import dataclass, field
from functools import cached_property

from . import catalog as C
from . import ids

MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Period:
    """The simulated calendar: served history ``[start, today)`` and holdout ``[today, holdout_end)``."""

    start: dt.date
    today: dt.date
    holdout_days: int

    @cached_property
    def start_dt(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time())

    @cached_property
    def today_dt(self) -> dt.datetime:
        return dt.datetime.combine(self.today, dt.time())

    @cached_property
    def holdout_end_dt(self) -> dt.datetime:
        return self.today_dt + dt.timedelta(days=self.holdout_days)

    @property
    def history_days(self) -> int:
        return (self.today - self.start).days

    def at(self, day: float) -> dt.datetime:
        return self.start_dt + dt.timedelta(days=day)


@dataclass
class Person:
    j: int
    first: str
    last: str
    sex: str
    age: int
    birthday: dt.date
    phone: str  # canonical 7XXXXXXXXXX
    email: str

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"


@dataclass
class Deal:
    k: int
    system: str  # amocrm | bitrix24 | file
    created: dt.datetime
    closed: dt.datetime
    outcome: str  # won | lost
    loss: str | None  # price | other
    lines: list[tuple[C.Product, int]]
    amount_kop: int
    cogs_kop: int
    pipeline: str  # sales | growth
    manager: int | str
    purpose: str | None
    contact_j: int = 0
    client_slot: int | None = None  # which of the customer's Metrica clients filled the form
    utm: tuple[str, str, str, str] | None = None
    edited: dt.datetime | None = None  # a later edit (updated_at after closing)
    deleted_at: dt.datetime | None = None  # a duplicate lead deleted by its manager

    @property
    def product_names(self) -> list[str]:
        return [p.name for p, _ in self.lines]

    def served(self, period: Period) -> bool:
        return self.created < period.today_dt

    def closed_by(self, period: Period) -> bool:
        return self.closed < period.today_dt


@dataclass
class Activity:
    k: int
    kind: str  # call | meeting | email | complaint | preference | store_visit
    at: dt.datetime
    system: str
    deal_k: int | None
    incoming: bool
    text: str
    duration: int
    contact_j: int
    manager: int | str


@dataclass
class Visit:
    k: int
    client_slot: int  # -1.. for anonymous visitors the slot is the visitor itself
    at: dt.datetime
    path: str
    end_path: str
    page_views: int
    duration: int
    traffic: str  # organic | ad | direct | referral | social | internal
    engine: str  # yandex_search | google_search | ""
    utm: tuple[str, str, str, str] | None
    phrase: str | None
    goals: list[tuple[int, dt.datetime]] = field(default_factory=list)
    purchase: tuple[str, float] | None = None


@dataclass
class SurveyResponse:
    channel: str  # nps | typeform | yandex_forms
    at: dt.datetime
    contact_j: int
    answers: dict
    use_email: bool
    use_phone: bool
    client_slot: int | None


@dataclass
class Customer:
    index: int
    job: C.Job
    is_b2b: bool
    crm: str  # amocrm | bitrix24 | file
    also_file: bool
    web: bool
    city: str
    persons: list[Person]
    company: str | None
    inn: str | None
    manager: int | str
    satisfaction: str
    price_sensitive: bool
    prospect: bool = False  # a lead that never became a customer
    profile: C.ServiceProfile = C.STANDARD  # how costly the customer is to serve and to acquire
    devices: list[int] = field(default_factory=list)  # deviceCategory per client slot
    client_ids: list[str] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    visits: list[Visit] = field(default_factory=list)
    surveys: list[SurveyResponse] = field(default_factory=list)
    churn_date: dt.datetime | None = None
    churn_reason: str | None = None

    @property
    def key(self) -> str:
        return f"C{self.index + 1:07d}"

    @property
    def main(self) -> Person:
        return self.persons[0]

    @property
    def file_customer(self) -> bool:
        return self.crm == "file" or self.also_file


@dataclass
class Anonymous:
    """A site visitor who never became a customer (noise for web analytics)."""

    index: int
    city: str
    device: int
    client_id: str
    visits: list[Visit]


JOB_WEIGHTS = tuple((j, j.weight) for j in C.JOBS)


# --- helpers -----------------------------------------------------------------------------------

def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


_CUMULATIVE: dict[tuple, tuple[list, list[float], float]] = {}


def weighted(rng: random.Random, pairs):
    """One value of ``((value, weight), ...)`` (what ``rng.choices`` does, with cached cumulative weights)."""
    pairs = tuple(pairs)
    entry = _CUMULATIVE.get(pairs)
    if entry is None:
        cum = list(itertools.accumulate(w for _, w in pairs))
        entry = _CUMULATIVE[pairs] = ([v for v, _ in pairs], cum, cum[-1])
    values, cum, total = entry
    return values[bisect.bisect(cum, rng.random() * total)]


def business_time(rng: random.Random, day: dt.datetime) -> dt.datetime:
    """The same day at a plausible working time (09:00–20:59:59), to the second."""
    return dt.datetime(day.year, day.month, day.day) + dt.timedelta(seconds=32_400 + int(rng.random() * 43_200))


def _next_holiday(day: dt.datetime, holidays: list[tuple[int, int]], min_gap: float) -> dt.datetime:
    earliest = day + dt.timedelta(days=min_gap)
    candidates = []
    for year in (earliest.year, earliest.year + 1):
        for month, mday in holidays:
            when = dt.datetime(year, month, mday)
            if when >= earliest:
                candidates.append(when)
    return min(candidates)


# --- the customer ------------------------------------------------------------------------------

def _person(rng: random.Random, index: int, j: int, period: Period) -> Person:
    sex = rng.choice("MF")
    first = rng.choice(C.MALE_FIRST if sex == "M" else C.FEMALE_FIRST)
    stem = rng.choice(C.LAST_STEMS)
    last = stem if sex == "M" else stem + "а"
    age = rng.randint(20, 65)
    birthday = dt.date(period.today.year - age, rng.randint(1, 12), rng.randint(1, 28))
    gidx = index * ids.CONTACTS_PER_CUSTOMER + j
    return Person(j, first, last, sex, age, birthday, ids.phone_digits(gidx),
                  ids.email_for(last, first, gidx, rng.choice(C.EMAIL_DOMAINS)))


def _company(rng: random.Random, job: C.Job, boss: Person) -> str:
    if job.job_id == "horeca_restock":
        return f"Кофейня «{rng.choice(C.CAFE_WORDS)}»"
    if job.job_id == "barista_growth":
        return f"ИП {boss.last} {boss.first[0]}."
    return f"ООО «{rng.choice(C.COMPANY_WORDS)}{rng.choice(('', ' Плюс', ' Групп', ' Сервис'))}»"


def new_customer(rng: random.Random, index: int, period: Period) -> Customer:
    job = weighted(rng, JOB_WEIGHTS)
    is_b2b = rng.random() < job.b2b_share
    # Demographics are drawn here, after the job, from distributions that ignore it.
    city = weighted(rng, C.CITIES)
    n_persons = 1 + (rng.random() < 0.4) + (rng.random() < 0.15) if is_b2b else 1
    persons = [_person(rng, index, j, period) for j in range(n_persons)]
    if job.crm == "bitrix24":
        crm, also_file = "bitrix24", False
    elif not is_b2b and rng.random() < C.FILE_ONLY_SHARE:
        crm, also_file = "file", False
    else:
        crm, also_file = "amocrm", (not is_b2b and rng.random() < C.ALSO_FILE_SHARE)
    if crm == "amocrm":
        manager = rng.choice(C.AMO_USERS[3:] if is_b2b and rng.random() < 0.7 else C.AMO_USERS)[0]
    elif crm == "bitrix24":
        manager = rng.choice(C.B24_USERS)[0]
    else:
        manager = rng.choice(C.FILE_MANAGERS)
    web_share = {"amocrm": 0.7 if not is_b2b else 0.6, "bitrix24": 0.45, "file": 0.0}[crm]
    customer = Customer(
        index=index, job=job, is_b2b=is_b2b, crm=crm, also_file=also_file,
        web=rng.random() < web_share, city=city, persons=persons,
        company=_company(rng, job, persons[0]) if is_b2b else None,
        inn=f"7{ids.scramble9(index + 500_000_000):09d}" if is_b2b else None,
        manager=manager,
        satisfaction=weighted(rng, (("good", 0.72), ("meh", 0.18), ("bad", 0.10))),
        price_sensitive=rng.random() < 0.15,
        prospect=crm != "file" and rng.random() < C.PROSPECT_SHARE,
    )
    customer.profile = _profile(rng, job, is_b2b, crm)
    if customer.profile.ad_acquired:  # came through a paid campaign: a web customer of the online shop
        customer.web, customer.also_file = True, False
    if customer.prospect:
        customer.also_file = False  # never bought, so never bought in the store either
    if customer.web:
        customer.devices = [weighted(rng, ((1, 0.55), (2, 0.40), (3, 0.05)))]
        if rng.random() < 0.2:
            customer.devices.append(2)
    return customer


def _profile(rng: random.Random, job: C.Job, is_b2b: bool, crm: str) -> C.ServiceProfile:
    shares = C.PROFILE_SHARES.get((job.job_id, is_b2b), ())
    u, name = rng.random(), "standard"
    for candidate, share in shares:
        if u < share:
            name = candidate
            break
        u -= share
    profile = C.SERVICE_PROFILES[name]
    if profile.ad_acquired and crm != "amocrm":
        return C.STANDARD
    return profile


def _completeness(manager: int | str) -> float:
    for uid, _, _, c in C.AMO_USERS:
        if uid == manager:
            return c
    for uid, _, _, c in C.B24_USERS:
        if uid == manager:
            return c
    return 0.5


# --- the purchase timeline ---------------------------------------------------------------------

@dataclass
class Attempt:
    day: float
    outcome: str  # won | lost_price | lost_other
    complaint: bool = False


def _timeline(rng: random.Random, c: Customer, period: Period) -> list[Attempt]:
    job = c.job
    horizon = period.history_days + period.holdout_days
    first = (period.history_days - 2) * (rng.random() ** 0.85)
    profile = c.profile
    gap_mean = rng.uniform(*job.gap_days)
    p_drop = rng.betavariate(*job.drop_beta)
    if profile is not C.STANDARD:
        # orders at another pace (never more often than every MIN_PROFILE_GAP_DAYS), with the dropout
        # chance per order scaled alike, so the customer's lifetime in days stays the job's
        new_gap = max(gap_mean * profile.gap_factor, C.MIN_PROFILE_GAP_DAYS)
        p_drop = min(p_drop * new_gap / gap_mean, 1.0) * profile.loyalty
        gap_mean = new_gap
    if profile.drop_range is not None:
        p_drop = rng.uniform(*profile.drop_range)
    complaint_p = {"good": 0.01, "meh": 0.06, "bad": 0.30}[c.satisfaction]
    if profile.complaint_p is not None:
        complaint_p = max(complaint_p, profile.complaint_p)
    holidays = [C.HOLIDAYS[0]] if rng.random() < 0.8 else []
    holidays += [h for h in C.HOLIDAYS[1:] if rng.random() < 0.3]
    holidays = holidays or [C.HOLIDAYS[0]]
    burst_left = rng.randint(1, 3)

    def day_of(when: dt.datetime) -> float:
        return (when - period.start_dt).total_seconds() / 86400

    if job.job_id == "gift":
        first = day_of(_next_holiday(period.at(first), holidays, 0)) - rng.uniform(1, 12)
        if first >= period.history_days - 1:
            first = period.history_days - 1 - rng.uniform(1, 30)
    first = max(first, 0.0)
    if c.prospect:  # asked for a quote, never bought: one lost lead in «Продажи», sometimes a retry
        attempts = [Attempt(first, "lost_price" if c.price_sensitive else "lost_other")]
        if rng.random() < 0.3:
            attempts.append(Attempt(first + rng.uniform(20, 120), "lost_other"))
        return [a for a in attempts if a.day < horizon]

    attempts: list[Attempt] = []
    t, n = first, 0
    while t < horizon:
        if n > 0 and c.price_sensitive and rng.random() < 0.25:
            attempts.append(Attempt(t, "lost_price"))
            if rng.random() < 0.45:
                c.churn_date, c.churn_reason = period.at(t + 1), "competitor_price"
                break
            t += rng.uniform(3, 12)
            continue
        if n > 0 and rng.random() < 0.07:
            attempts.append(Attempt(t, "lost_other"))
            t += rng.uniform(2, 8)
            continue
        attempt = Attempt(t, "won", complaint=rng.random() < complaint_p)
        attempts.append(attempt)
        n += 1
        if attempt.complaint and rng.random() < profile.complaint_churn:
            c.churn_date, c.churn_reason = period.at(t + 6), "dissatisfied"
            break
        if rng.random() < p_drop:
            c.churn_date, c.churn_reason = period.at(t + 1), "need_disappeared"
            break
        if job.job_id == "gift":
            t = day_of(_next_holiday(period.at(t), holidays, 25)) - rng.uniform(1, 12)
        elif job.job_id == "barista_growth" and burst_left > 0:
            burst_left -= 1
            t += rng.uniform(3, 12)
        else:
            if job.job_id == "barista_growth":
                burst_left = rng.randint(1, 3)
            t += max(1.0, rng.gammavariate(job.gap_shape, gap_mean / job.gap_shape))
    if c.churn_date is not None and c.churn_date >= period.holdout_end_dt:
        c.churn_date, c.churn_reason = None, None
    return attempts


# --- deals, activities, visits, surveys ----------------------------------------------------------

def _lines(rng: random.Random, job: C.Job, is_b2b: bool, small: bool = False) -> list[tuple[C.Product, int]]:
    if rng.random() < 0.05:  # an occasional order for another job (a present, a trial)
        job = rng.choice(C.JOBS)
    n = 1 if small else weighted(rng, ((1, 0.6), (2, 0.3), (3, 0.1)))
    products = rng.sample(job.products, n) if n > 1 else [weighted(rng, list(zip(job.products, (0.5, 0.3, 0.2), strict=True)))]
    if small:  # one unit at a time
        lines = [(p, 1) for p in products]
    else:
        scale = rng.randint(1, 4) if is_b2b and job.job_id == "office_supply" else 1
        lines = [(p, rng.randint(*job.quantity) * scale) for p in products]
    if rng.random() < 0.06:
        other = rng.choice([j for j in C.JOBS if j is not job])
        lines.append((other.products[0], 1))
    return lines


def _money(rng: random.Random, c: Customer, lines, system: str) -> tuple[int, int]:
    gross = sum(p.price * q for p, q in lines)
    cogs = sum(p.price * q * (1 - p.margin) for p, q in lines)
    # negotiated B2B discounts and a 3.5% store/promo discount leave kopecks in the amounts
    discount = (0.0, 0.035, 0.05, 0.075)[c.index % 4] if c.is_b2b else (0.035 if rng.random() < 0.3 else 0.0)
    if c.profile.discount is not None:  # a deep promo discount: revenue falls, the cost of goods does not
        discount = round(rng.uniform(*c.profile.discount), 2)
    amount = round(gross * 100 * (1 - discount))
    if system == "amocrm":  # amoCRM's lead price is a whole number of roubles
        amount = round(amount / 100) * 100
    return amount, round(cogs * 100)


def _system_for(c: Customer, n_won: int, switch_after: int) -> str:
    if c.crm != "amocrm":
        return c.crm
    return "file" if c.also_file and n_won < switch_after else "amocrm"


def _utm(rng: random.Random, job: C.Job) -> tuple[str, str, str, str]:
    source = rng.choice(job.extra_sources)
    return (source, "cpc", job.campaign if source == "yandex" else f"{job.campaign}_vk", job.utm_term)


def _traffic(rng: random.Random, job: C.Job, acquisition: bool):
    """(traffic, engine, utm, phrase) of a visit that lands on the job's page."""
    kind = weighted(rng, (("organic", 0.40), ("ad", 0.35), ("direct", 0.12), ("referral", 0.05),
                          ("social", 0.08)) if acquisition else
                    (("direct", 0.45), ("organic", 0.25), ("ad", 0.15), ("internal", 0.10), ("social", 0.05)))
    if kind == "organic":
        return kind, rng.choice(("yandex_search",) * 4 + ("google_search",)), None, rng.choice(job.phrases)
    if kind == "ad":
        utm = _utm(rng, job)
        return kind, "", utm, rng.choice(job.phrases) if utm[0] == "yandex" else None
    return kind, "", None, None


def _promo_traffic(rng: random.Random, job: C.Job):
    """A paid campaign's click (VK where the job advertises there): how deal hunters arrive."""
    source = "vk" if "vk" in job.extra_sources and rng.random() < 0.7 else "yandex"
    utm = (source, "cpc", job.campaign if source == "yandex" else f"{job.campaign}_vk", job.utm_term)
    return "ad", "", utm, rng.choice(job.phrases) if source == "yandex" else None


class Builder:
    """Turns a customer's attempts into deals, activities, visits and surveys (one RNG, in order)."""

    def __init__(self, rng: random.Random, c: Customer, period: Period):
        self.rng, self.c, self.period = rng, c, period
        self.k = 0
        self.vk = 0

    def next_k(self) -> int:
        self.k += 1
        if self.k >= ids.PER_CUSTOMER:
            raise OverflowError(f"customer {self.c.index} needs more than {ids.PER_CUSTOMER} ids")
        return self.k

    def activity(self, kind, at, system, deal_k, incoming, text, duration=0, contact_j=0):
        self.c.activities.append(Activity(self.next_k(), kind, at, system, deal_k, incoming, text,
                                          duration, contact_j, self.c.manager))

    def visit(self, slot, at, job, traffic, *, goals=(), purchase=None, deep=False) -> Visit:
        rng = self.rng
        kind, engine, utm, phrase = traffic
        path = job.landing if rng.random() < 0.92 else "/"
        pv = 1 if (rng.random() < 0.25 and not goals) else rng.randint(2, 9)
        end = path if pv == 1 else rng.choice((f"{job.landing}/catalog", "/cart", f"{job.landing}/faq",
                                               "/delivery", "/contacts"))
        if goals:
            end = "/order/thanks"
        self.vk += 1
        v = Visit(self.vk, slot, at, path, end, pv, 0 if pv == 1 else rng.randint(40, 900), kind, engine,
                  utm, phrase, list(goals), purchase)
        self.c.visits.append(v)
        return v

    # -- deals --

    def run(self, attempts: list[Attempt]) -> None:
        c, rng = self.c, self.rng
        switch_after = rng.randint(1, 3)
        n_won = 0
        completeness = _completeness(c.manager)
        for i, a in enumerate(attempts):
            system = _system_for(c, n_won, switch_after)
            closed = business_time(rng, self.period.at(a.day))
            growth = n_won > 0  # «Развитие клиентов» holds repeat orders, after a first purchase
            # days from lead to closing; long enough that some deals are still open at `today`
            if c.is_b2b:
                cycle = rng.uniform(2, 21) if not growth else rng.uniform(1, 7)
            else:
                cycle = min(rng.expovariate(1 / 3), 20) if not growth else rng.uniform(0.5, 5)
            created = closed - dt.timedelta(days=cycle)
            created = max(created, self.period.start_dt + MINUTE)
            lines = _lines(rng, c.job, c.is_b2b, c.profile.small_orders)
            amount, cogs = _money(rng, c, lines, system)
            won = a.outcome == "won"
            deal = Deal(
                k=self.next_k(), system=system, created=created, closed=closed,
                outcome="won" if won else "lost",
                loss=None if won else ("price" if a.outcome == "lost_price" else "other"),
                lines=lines, amount_kop=amount, cogs_kop=0 if not won else cogs,
                pipeline="growth" if growth else "sales", manager=c.manager,
                purpose=rng.choice(c.job.purpose_notes) if rng.random() < 0.2 + 0.5 * completeness else None,
                contact_j=rng.randrange(len(c.persons)),
            )
            if system != "file" and c.web and (i == 0 or rng.random() < 0.5):
                self._site_visits(deal, acquisition=(i == 0))
            if system != "file" and rng.random() < 0.05:
                deal.edited = closed + dt.timedelta(days=rng.uniform(1, 60))
            c.deals.append(deal)
            self._deal_activities(deal, a)
            if won:
                n_won += 1
                if system == "amocrm" and rng.random() < 0.01:
                    self._duplicate(deal)

    def _duplicate(self, deal: Deal) -> None:
        """A manager creates the same lead twice and deletes the copy a few days later."""
        dup = Deal(**{**deal.__dict__, "k": self.next_k(), "client_slot": None, "utm": None, "edited": None})
        dup.created = deal.created + dt.timedelta(minutes=self.rng.randint(2, 90))
        dup.closed = deal.closed
        dup.deleted_at = deal.closed + dt.timedelta(days=self.rng.uniform(1, 10))
        if dup.deleted_at < self.period.today_dt:  # an undeleted copy would be real revenue
            self.c.deals.append(dup)

    def _site_visits(self, deal: Deal, acquisition: bool) -> None:
        rng, c = self.rng, self.c
        slot = 0 if len(c.devices) == 1 or rng.random() < 0.8 else 1
        promo = _promo_traffic(rng, c.job) if acquisition and c.profile.ad_acquired else None
        for _ in range(rng.randint(0, 2)):  # research before the order
            before = deal.created - dt.timedelta(days=rng.uniform(1, 10))
            if before > self.period.start_dt:
                self.visit(slot, business_time(rng, before), c.job, promo or _traffic(rng, c.job, acquisition))
        traffic = promo or _traffic(rng, c.job, acquisition)
        at = deal.created - dt.timedelta(minutes=rng.randint(1, 30))
        at = max(at, self.period.start_dt)
        purchase = None
        if deal.system == "amocrm" and not c.is_b2b and deal.outcome == "won":
            purchase = (str(ids.amo_lead_id(c.index, deal.k)), deal.amount_kop / 100)
        goal = C.GOAL_ORDER_FORM if rng.random() < 0.8 else C.GOAL_CALLBACK
        self.visit(slot, at, c.job, traffic, goals=[(goal, deal.created)], purchase=purchase)
        deal.client_slot = slot
        deal.utm = traffic[2]

    def _deal_activities(self, deal: Deal, a: Attempt) -> None:
        rng, c, job = self.rng, self.c, self.c.job
        span = max((deal.closed - deal.created).total_seconds(), 60)

        def during() -> dt.datetime:
            return deal.created + dt.timedelta(seconds=rng.uniform(0, span))

        def contact() -> int:
            return rng.randrange(len(c.persons))

        if deal.outcome == "lost":
            self.activity("call", during(), deal.system, deal.k, False,
                          "Обсудили цену, клиент не готов" if deal.loss == "price" else "Не договорились",
                          rng.randint(30, 400), contact())
            return
        profile = c.profile
        for _ in range(poisson(rng, job.calls_per_order + profile.extra_calls)):
            incoming = rng.random() < 0.5
            self.activity("call", during(), deal.system, deal.k, incoming,
                          "Входящий звонок" if incoming else "Исходящий звонок", rng.randint(20, 600), contact())
        meetings = poisson(rng, job.meetings_per_order + profile.extra_meetings) + (1 if c.is_b2b and deal.pipeline == "sales" and rng.random() < 0.7 else 0)
        for _ in range(meetings):
            self.activity("meeting", during(), deal.system, deal.k, False, "Встреча с клиентом", 3600, contact())
        for _ in range(poisson(rng, job.emails_per_order + profile.extra_emails)):
            self.activity("email", during(), deal.system, deal.k, rng.random() < 0.4, "Счёт и документы",
                          0, contact())
        if a.complaint:
            when = deal.closed + dt.timedelta(days=rng.uniform(1, 5))
            self.activity("complaint", when, deal.system, deal.k, True,
                          f"Жалоба: {rng.choice(C.COMPLAINTS)}", rng.randint(60, 900), contact())
        if deal.system == "amocrm" and rng.random() < 0.25:
            self.activity("preference", deal.closed + dt.timedelta(hours=1), deal.system, deal.k, False,
                          f"Предпочтения: {rng.choice(C.PREFERENCES)}", 0, contact())
        if deal.system == "file" and rng.random() < 0.5:
            self.activity("store_visit", deal.closed - dt.timedelta(minutes=20), "file", deal.k, True,
                          "Визит в шоурум", 0, 0)

    # -- browsing and surveys --

    def browsing(self) -> None:
        rng, c = self.rng, self.c
        if not c.web:
            return
        won = [d for d in c.deals if d.outcome == "won"]
        if not won:
            return
        first, last = won[0].created, (c.churn_date or self.period.holdout_end_dt)
        span = max((last - first).days, 1)
        for _ in range(poisson(rng, 1.5 + span / 90)):
            at = business_time(rng, first + dt.timedelta(days=rng.uniform(0, span)))
            job = c.job if rng.random() < 0.7 else rng.choice(C.JOBS)
            slot = rng.randrange(len(c.devices))
            self.visit(slot, at, job, _traffic(rng, job, acquisition=False))

    def surveys(self) -> None:
        rng, c = self.rng, self.c
        won = [d for d in c.deals if d.outcome == "won" and d.deleted_at is None]
        if not won:
            return
        complained = {a.deal_k for a in c.activities if a.kind == "complaint"}
        if rng.random() < 0.3:
            for d in rng.sample(won, min(len(won), rng.randint(1, 2))):
                self._nps(d, d.k in complained)
        if rng.random() < (0.35 if c.web else 0.12):
            self._purpose(won[0])
        self._exit(won[-1])

    def _respondent(self, channel, at, answers, slot=None, email=None) -> None:
        rng = self.rng
        use_email = rng.random() < 0.65 if email is None else email
        use_phone = not use_email or rng.random() < 0.2
        self.c.surveys.append(SurveyResponse(channel, at, rng.randrange(len(self.c.persons)), answers,
                                             use_email, use_phone, slot))

    def _nps(self, deal: Deal, complained: bool) -> None:
        rng, c = self.rng, self.c
        mood = "bad" if complained else c.satisfaction
        nps = {"good": rng.choice((8, 9, 9, 10, 10, 10)), "meh": rng.randint(5, 8), "bad": rng.randint(0, 6)}[mood]
        sat = {"good": rng.choice((4, 5, 5)), "meh": rng.choice((3, 4)), "bad": rng.choice((1, 2, 3))}[mood]
        text = {"good": "Всё отлично, спасибо", "meh": "Иногда задерживают доставку",
                "bad": "Качество упало, доставка опаздывает"}[mood]
        at = business_time(rng, deal.closed + dt.timedelta(days=rng.uniform(1, 7)))
        self._respondent("nps", at, {"nps": nps, "satisfaction": sat, "comment": text})

    def _purpose(self, deal: Deal) -> None:
        rng, c = self.rng, self.c
        job = c.job
        # Social desirability: a quarter of cheap-energy and gift buyers say they are hobbyists.
        if job.job_id in ("daily_energy", "gift") and rng.random() < 0.25:
            job = C.JOB_BY_ID["home_espresso"]
        elif rng.random() < 0.05:
            job = rng.choice(C.JOBS)
        interests = rng.sample(("эспрессо", "альтернатива", "латте-арт", "обжарка", "чай", "десерты"), 2)
        at = business_time(rng, deal.closed + dt.timedelta(days=rng.uniform(1, 10)))
        slot = rng.randrange(len(c.devices)) if c.devices else None
        self._respondent("typeform", at, {"purpose": job.survey_answer, "interests": interests,
                                          "satisfaction": {"good": 5, "meh": 4, "bad": 2}[c.satisfaction]},
                         slot=slot, email=rng.random() < 0.8)

    def _exit(self, last: Deal) -> None:
        """Customers silent for 45–120 days are asked why; churned ones answer more often."""
        rng, c = self.rng, self.c
        asked = last.closed + dt.timedelta(days=rng.uniform(45, 120))
        if c.churn_reason is not None and asked >= c.churn_date:
            if rng.random() < 0.35:
                reason = c.churn_reason if rng.random() < 0.85 else rng.choice(C.CHURN_REASONS)
            else:
                return
        elif rng.random() < 0.05:
            reason = "alive"
        else:
            return
        slot = 0 if c.devices else None
        self._respondent("yandex_forms", business_time(rng, asked), {"exit_reason": C.EXIT_ANSWERS[reason]},
                         slot=slot, email=True)


def simulate(rng: random.Random, index: int, period: Period) -> Customer:
    """One customer's whole life (history and holdout)."""
    c = new_customer(rng, index, period)
    builder = Builder(rng, c, period)
    builder.run(_timeline(rng, c, period))
    builder.browsing()
    builder.surveys()
    c.visits.sort(key=lambda v: (v.at, v.k))
    _name_clients(c)
    return c


def _name_clients(c: Customer) -> None:
    """ClientIDs embed their first visit's time, so they are named after the visits exist."""
    c.client_ids = []
    for slot in range(len(c.devices)):
        times = [v.at for v in c.visits if v.client_slot == slot]
        first = min(times) if times else c.deals[0].created
        c.client_ids.append(ids.client_id(first, c.index * 2 + slot))


def simulate_anonymous(rng: random.Random, index: int, period: Period) -> Anonymous:
    job = weighted(rng, JOB_WEIGHTS)
    first = period.at(rng.uniform(0, period.history_days + period.holdout_days))
    anon = Anonymous(index, weighted(rng, C.CITIES), weighted(rng, ((1, 0.45), (2, 0.5), (3, 0.05))), "", [])
    visits = []
    for v in range(rng.randint(1, 4)):
        at = business_time(rng, first + dt.timedelta(days=rng.uniform(0, 40) if v else 0))
        this_job = job if rng.random() < 0.8 else rng.choice(C.JOBS)
        kind, engine, utm, phrase = _traffic(rng, this_job, acquisition=(v == 0))
        path = this_job.landing if rng.random() < 0.85 else "/"
        pv = rng.randint(1, 6)
        goals = [(C.GOAL_CART, at + dt.timedelta(minutes=2))] if rng.random() < 0.05 else []
        visits.append(Visit(v + 1, 0, at, path, path if pv == 1 else "/cart" if goals else f"{this_job.landing}/catalog",
                            pv, 0 if pv == 1 else rng.randint(15, 500), kind, engine, utm, phrase, goals))
    visits.sort(key=lambda x: (x.at, x.k))
    anon.visits = visits
    anon.client_id = ids.client_id(visits[0].at, 1_000_000_000 - 1 - index)
    return anon
