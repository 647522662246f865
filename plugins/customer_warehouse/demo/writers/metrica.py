"""Yandex Metrica: the counter, Logs API visits (TSV) and the Reporting API search-phrase report.

``visits.tsv`` has the header of every ``ym:s:*`` field offered and one row per visit before
``today``, sorted by date and time, values as the Logs API writes them: ``dateTime`` in the
counter's zone, arrays as ClickHouse literals (``[1,2]``, ``['a','b']``), backslash escaping.
``search_phrases.jsonl`` aggregates the same visits by (date, phrase, landing URL, UTM), so the
report and the raw visits agree. Ad clicks are counted per day and campaign for the spend file.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

from .. import catalog as C
from .. import ids
from ..model import Anonymous, Customer, Period, Visit
from .common import Jsonl, Sinks, dumps

FIELDS = ("visitID", "counterID", "clientID", "dateTime", "date", "isNewUser", "startURL", "endURL",
          "pageViews", "visitDuration", "bounce", "goalsID", "goalsDateTime", "purchaseID",
          "purchaseRevenue", "regionCity", "regionCountry", "deviceCategory", "referer",
          "lastsignTrafficSource", "lastsignSearchEngine", "lastsignUTMSource", "lastsignUTMMedium",
          "lastsignUTMCampaign", "lastsignUTMTerm")
HEADER = "\t".join(f"ym:s:{f}" for f in FIELDS)
ANON_ID_OFFSET = 1 << 40  # anonymous visitors' visit ids live far from customers'


def escape(value: str) -> str:
    if "\\" not in value and "\t" not in value and "\n" not in value and "\r" not in value:
        return value
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def str_array(items) -> str:
    return "[" + ",".join("'" + str(i).replace("\\", "\\\\").replace("'", "\\'") + "'" for i in items) + "]"


def num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 2))


def start_url(v: Visit) -> str:
    url = C.SITE + v.path
    if v.utm:
        src, med, camp, term = v.utm
        url += f"?utm_source={src}&utm_medium={med}&utm_campaign={camp}&utm_term={term}"
    return url


def referer(v: Visit) -> str:
    if v.traffic == "organic":
        if v.engine == "google_search":
            return "https://www.google.com/"
        return "https://yandex.ru/search/?text=" + quote(v.phrase or "")
    if v.traffic == "ad":
        return "https://yandex.ru/" if v.utm and v.utm[0] == "yandex" else "https://vk.com/"
    if v.traffic == "social":
        return "https://t.me/"
    if v.traffic == "referral":
        return "https://coffee-forum.ru/topic/1187"
    if v.traffic == "internal":
        return C.SITE + "/blog"
    return ""


class MetricaWriter:
    def __init__(self, out: Path, period: Period, sinks: Sinks | None = None):
        self.period = period
        sinks = sinks or Sinks()
        self.dir = out / "metrica" / str(C.COUNTER_ID)
        self.visits = sinks.time_sorted(self.dir / "visits.tsv", HEADER, period.start)
        self.phrases: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
        self.ad_clicks: dict[tuple, int] = defaultdict(int)
        if sinks.real:
            self._counter()

    def _counter(self) -> None:
        (self.dir / "counter.json").write_text(dumps({
            "id": C.COUNTER_ID, "name": C.COUNTER_NAME, "site": C.SITE.removeprefix("https://"),
            "timezone": C.TIMEZONE, "currency": C.CURRENCY,
            "goals": [{"id": C.GOAL_ORDER_FORM, "name": "Отправка формы заказа", "type": "action"},
                      {"id": C.GOAL_CALLBACK, "name": "Заказ обратного звонка", "type": "action"},
                      {"id": C.GOAL_CART, "name": "Добавление в корзину", "type": "action"}]}) + "\n",
            encoding="utf-8")

    def merge(self, phrases: dict, ad_clicks: dict) -> None:
        """Add a worker's aggregates (sums, so the order of chunks does not matter)."""
        for key, (n_visits, n_users) in phrases.items():
            self.phrases[key][0] += n_visits
            self.phrases[key][1] += n_users
        for key, clicks in ad_clicks.items():
            self.ad_clicks[key] += clicks

    def customer(self, c: Customer) -> None:
        if c.visits:
            self._visits(c.index, c.visits, lambda v: c.client_ids[v.client_slot],
                         lambda v: c.devices[v.client_slot], c.city)

    def anonymous(self, a: Anonymous) -> None:
        self._visits(ANON_ID_OFFSET + a.index, a.visits, lambda v: a.client_id, lambda v: a.device, a.city)

    def _visits(self, owner: int, visits, client_of, device_of, city) -> None:
        seen: set[str] = set()
        users: set[tuple] = set()
        for v in visits:
            if v.at >= self.period.today_dt:
                continue
            client = client_of(v)
            vid = ids.visit_id(owner, v.k)
            self.visits.add(v.at, vid, self._row(v, vid, client, device_of(v), city, client not in seen))
            seen.add(client)
            url = start_url(v)
            if v.phrase:
                key = (v.at.date(), v.phrase, url) + (v.utm or (None, None, None, None))
                self.phrases[key][0] += 1
                if (key, client) not in users:
                    users.add((key, client))
                    self.phrases[key][1] += 1
            if v.traffic == "ad" and v.utm:
                self.ad_clicks[(v.at.date(),) + v.utm[:3]] += 1

    def _row(self, v: Visit, vid: int, client: str, device: int, city: str, new: bool) -> str:
        utm = v.utm or ("", "", "", "")
        values = (
            str(vid), str(C.COUNTER_ID), client, str(v.at)[:19], str(v.at)[:10],
            "1" if new else "0", start_url(v), C.SITE + v.end_path, str(v.page_views), str(v.duration),
            "1" if v.page_views == 1 and v.duration < 15 else "0",
            "[" + ",".join(str(g) for g, _ in v.goals) + "]",
            str_array(str(t)[:19] for _, t in v.goals),
            str_array([v.purchase[0]] if v.purchase else []),
            "[" + (num(v.purchase[1]) if v.purchase else "") + "]",
            city, "Россия", str(device), referer(v), v.traffic, v.engine, *utm,
        )
        return "\t".join(escape(x) for x in values)

    def close(self) -> dict[str, int]:
        counts = {f"metrica/{C.COUNTER_ID}/visits.tsv": self.visits.close()}
        phrases = Jsonl(self.dir / "search_phrases.jsonl")
        for key in sorted(self.phrases, key=lambda k: tuple("" if x is None else str(x) for x in k)):
            day, phrase, url, src, med, camp, term = key
            n_visits, n_users = self.phrases[key]
            phrases.write({"ym:s:date": day.isoformat(), "ym:s:lastSearchPhrase": phrase, "ym:s:startURL": url,
                           "ym:s:lastUTMSource": src, "ym:s:lastUTMMedium": med, "ym:s:lastUTMCampaign": camp,
                           "ym:s:lastUTMTerm": term, "ym:s:visits": n_visits, "ym:s:users": n_users})
        counts[f"metrica/{C.COUNTER_ID}/search_phrases.jsonl"] = phrases.close()
        counts[f"metrica/{C.COUNTER_ID}/counter.json"] = 1
        return counts
