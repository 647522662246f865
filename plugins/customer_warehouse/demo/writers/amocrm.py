"""amoCRM (API v4) objects of the shop: leads, contacts, companies, notes, tasks, events, settings.

Each line is the object exactly as ``GET /api/v4/<entity>`` returns it inside ``_embedded``:
unix timestamps, ``custom_fields_values`` with field ids/names/codes/types, HAL ``_links``.
Only what exists at ``today`` is written: open leads keep the stage they had reached, leads
deleted before ``today`` go to ``deleted_leads.jsonl`` (what ``with=only_deleted`` returns).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .. import catalog as C
from .. import ids
from ..model import Customer, Deal, Period
from .common import Sinks, ulid

ACC = C.AMOCRM_ACCOUNT_ID
BASE = f"https://{C.AMOCRM_ACCOUNT}.amocrm.ru/api/v4"

# custom field ids
F_PURPOSE, F_CLIENT_ID = 701_001, 701_002
F_UTM = {"utm_source": 701_011, "utm_medium": 701_012, "utm_campaign": 701_013, "utm_term": 701_014}
F_PHONE, F_EMAIL, F_BIRTHDAY = 601_001, 601_002, 601_003
F_CO_PHONE, F_CO_EMAIL, F_INN = 651_001, 651_002, 651_003
PHONE_ENUMS = {"WORK": 301_001, "MOB": 301_002}
EMAIL_ENUMS = {"WORK": 302_001, "PRIV": 302_002}
PRODUCT_TAG_IDS = {p.name: 40_001 + i for i, p in enumerate(pr for job in C.JOBS for pr in job.products)}


def _link(path: str) -> dict:
    return {"self": {"href": f"{BASE}/{path}"}}


def _cf(field_id: int, name: str, ftype: str, value, code: str | None = None, enum=None) -> dict:
    item = {"value": value}
    if enum is not None:
        item["enum_id"], item["enum_code"] = enum
    return {"field_id": field_id, "field_name": name, "field_code": code, "field_type": ftype, "values": [item]}


def _statuses(pipeline: str) -> list[int]:
    return [s for s, _ in (C.SALES_STATUSES if pipeline == "sales" else C.GROWTH_STATUSES)]


def _pipeline_id(pipeline: str) -> int:
    return C.PIPELINE_SALES if pipeline == "sales" else C.PIPELINE_GROWTH


def stage_path(deal: Deal, period: Period) -> list[tuple[dt.datetime, int]]:
    """(time, status_id) of every status the lead entered up to ``today``."""
    steps = _statuses(deal.pipeline)
    span = deal.closed - deal.created
    path = [(deal.created + span * (i / len(steps)), s) for i, s in enumerate(steps)]
    if deal.outcome == "lost":
        # a lost lead stops somewhere on the way before being closed
        cut = 1 + (deal.k % len(steps))
        path = path[:cut]
    path.append((deal.closed, C.WON if deal.outcome == "won" else C.LOST))
    return [(t, s) for t, s in path if t < period.today_dt]


class AmoWriter:
    def __init__(self, out: Path, period: Period, sinks: Sinks | None = None):
        self.period = period
        sinks = sinks or Sinks()
        d = out / "amocrm"
        self.files = {name: sinks.jsonl(d / f"{name}.jsonl") for name in (
            "leads", "contacts", "companies", "events", "tasks", "notes_leads", "notes_contacts",
            "notes_companies", "deleted_leads", "users", "pipelines", "loss_reasons",
            "custom_fields_leads", "custom_fields_contacts", "custom_fields_companies")}
        if sinks.real:
            self._settings()

    # -- account settings --

    def _settings(self) -> None:
        created = ids.unix(self.period.start_dt - dt.timedelta(days=30))
        for uid, name, email, _ in C.AMO_USERS:
            self.files["users"].write({
                "id": uid, "name": name, "email": email, "lang": "ru",
                "rights": {"leads": {"view": "A", "edit": "A", "add": "A", "delete": "D", "export": "D"},
                           "is_admin": False, "is_free": False, "is_active": True, "group_id": None,
                           "role_id": None},
                "_links": _link(f"users/{uid}")})
        for pid, name, statuses, main in ((C.PIPELINE_SALES, "Продажи", C.SALES_STATUSES, True),
                                          (C.PIPELINE_GROWTH, "Развитие клиентов", C.GROWTH_STATUSES, False)):
            rows = [(sid, sname, 1) for sid, sname in statuses]
            rows += [(C.WON, "Успешно реализовано", 0), (C.LOST, "Закрыто и не реализовано", 0)]
            self.files["pipelines"].write({
                "id": pid, "name": name, "sort": 1 if main else 2, "is_main": main, "is_unsorted_on": False,
                "is_archive": False, "account_id": ACC, "_links": _link(f"leads/pipelines/{pid}"),
                "_embedded": {"statuses": [
                    {"id": sid, "name": sname, "sort": 10 * (i + 1), "is_editable": editable == 1,
                     "pipeline_id": pid, "color": "#99ccff" if editable else ("#CCFF66" if sid == C.WON else "#D5D8DB"),
                     "type": 0, "account_id": ACC,
                     "_links": _link(f"leads/pipelines/{pid}/statuses/{sid}")}
                    for i, (sid, sname, editable) in enumerate(rows)]}})
        for i, (rid, name, _) in enumerate(C.LOSS_REASONS):
            self.files["loss_reasons"].write({"id": rid, "name": name, "sort": 10_000 * (i + 1),
                                              "created_at": created, "updated_at": created,
                                              "_links": _link(f"leads/loss_reasons/{rid}")})
        fields = {
            "leads": [(F_PURPOSE, "Цель покупки", "textarea", None, None),
                      (F_CLIENT_ID, "Yandex ClientID", "text", None, None)]
            + [(fid, name, "tracking_data", name.upper(), None) for name, fid in F_UTM.items()],
            "contacts": [(F_PHONE, "Телефон", "multitext", "PHONE", PHONE_ENUMS),
                         (F_EMAIL, "Email", "multitext", "EMAIL", EMAIL_ENUMS),
                         (F_BIRTHDAY, "День рождения", "birthday", None, None)],
            "companies": [(F_CO_PHONE, "Телефон", "multitext", "PHONE", PHONE_ENUMS),
                          (F_CO_EMAIL, "Email", "multitext", "EMAIL", EMAIL_ENUMS),
                          (F_INN, "ИНН", "text", None, None)],
        }
        for entity, defs in fields.items():
            for sort, (fid, name, ftype, code, enums) in enumerate(defs):
                self.files[f"custom_fields_{entity}"].write({
                    "id": fid, "name": name, "type": ftype, "account_id": ACC, "code": code,
                    "sort": 500 + sort, "is_api_only": False, "group_id": None, "required_statuses": [],
                    "is_deletable": code is None, "is_predefined": code in ("PHONE", "EMAIL"),
                    "entity_type": entity, "remind": None,
                    "enums": [{"id": eid, "value": val, "sort": 2 * (i + 1)}
                              for i, (val, eid) in enumerate(enums.items())] if enums else None,
                    "_links": _link(f"{entity}/custom_fields/{fid}")})

    # -- per customer --

    def customer(self, c: Customer) -> None:
        if c.crm != "amocrm":
            return
        deals = [d for d in c.deals if d.system == "amocrm" and d.served(self.period)]
        if not deals:
            return
        first = deals[0].created - dt.timedelta(minutes=3)
        last = max(self._lead_updated(d) for d in deals)
        company_id = ids.amo_company_id(c.index) if c.is_b2b else None
        contact_ids = [ids.amo_contact_id(c.index, p.j) for p in c.persons]
        for p in c.persons:
            self._contact(c, p, first, last, company_id)
        if c.is_b2b:
            self._company(c, first, last, contact_ids)
        for d in deals:
            self._lead(c, d, contact_ids, company_id)
        self._activities(c)

    def _lead_updated(self, d: Deal) -> dt.datetime:
        if d.deleted_at is not None:
            return d.deleted_at
        times = [t for t, _ in stage_path(d, self.period)]
        if d.edited is not None and d.edited < self.period.today_dt and d.closed_by(self.period):
            times.append(d.edited)
        return max(times)

    def _contact(self, c: Customer, p, first, last, company_id) -> None:
        completeness = _completeness(c.manager)
        cid = ids.amo_contact_id(c.index, p.j)
        fill = (c.index * 7 + p.j * 13) % 100 / 100  # stable per contact, independent of the RNG
        cfv = [_cf(F_PHONE, "Телефон", "multitext", ids.phone_format(p.phone, 0 if fill < 0.7 else 1), "PHONE",
                   (PHONE_ENUMS["MOB"], "MOB"))]
        if fill < 0.4 + 0.6 * completeness:
            cfv.append(_cf(F_EMAIL, "Email", "multitext", p.email, "EMAIL", (EMAIL_ENUMS["WORK"], "WORK")))
        if fill < completeness:
            bday = dt.datetime.combine(p.birthday, dt.time())
            cfv.append(_cf(F_BIRTHDAY, "День рождения", "birthday", ids.unix(bday)))
        self.files["contacts"].write({
            "id": cid, "name": p.name, "first_name": p.first, "last_name": p.last,
            "responsible_user_id": c.manager, "group_id": 0, "created_by": c.manager, "updated_by": c.manager,
            "created_at": ids.unix(first), "updated_at": ids.unix(last), "closest_task_at": None,
            "is_deleted": False, "is_unsorted": False, "custom_fields_values": cfv, "account_id": ACC,
            "_links": _link(f"contacts/{cid}"),
            "_embedded": {"tags": [], "companies": [{"id": company_id, "_links": _link(f"companies/{company_id}")}]
                          if company_id else []}})

    def _company(self, c: Customer, first, last, contact_ids) -> None:
        co = ids.amo_company_id(c.index)
        office = ids.phone_digits(c.index * ids.CONTACTS_PER_CUSTOMER + 3)
        cfv = [_cf(F_CO_PHONE, "Телефон", "multitext", ids.phone_format(office, 1), "PHONE",
                   (PHONE_ENUMS["WORK"], "WORK")),
               _cf(F_INN, "ИНН", "text", c.inn)]
        self.files["companies"].write({
            "id": co, "name": c.company, "responsible_user_id": c.manager, "group_id": 0,
            "created_by": c.manager, "updated_by": c.manager, "created_at": ids.unix(first),
            "updated_at": ids.unix(last), "closest_task_at": None, "is_deleted": False,
            "custom_fields_values": cfv, "account_id": ACC, "_links": _link(f"companies/{co}"),
            "_embedded": {"tags": [], "contacts": [{"id": i, "_links": _link(f"contacts/{i}")} for i in contact_ids]}})

    def _lead(self, c: Customer, d: Deal, contact_ids, company_id) -> None:
        lid = ids.amo_lead_id(c.index, d.k)
        path = stage_path(d, self.period)
        status = path[-1][1]
        closed = d.closed_by(self.period)
        cfv = []
        if d.purpose:
            cfv.append(_cf(F_PURPOSE, "Цель покупки", "textarea", d.purpose))
        if d.client_slot is not None:
            cfv.append(_cf(F_CLIENT_ID, "Yandex ClientID", "text", c.client_ids[d.client_slot]))
        if d.utm:
            for name, value in zip(F_UTM, d.utm, strict=True):
                cfv.append(_cf(F_UTM[name], name, "tracking_data", value, name.upper()))
        lost = closed and d.outcome == "lost"
        reason_id = (C.PRICE_LOSS_ID if d.loss == "price" else C.LOSS_REASONS[1 + d.k % 3][0]) if lost else None
        main = contact_ids[d.contact_j]
        contacts = [main] + [i for i in contact_ids if i != main]
        embedded = {
            "tags": [{"id": PRODUCT_TAG_IDS[n], "name": n, "color": None} for n in d.product_names],
            "contacts": [{"id": i, "is_main": i == main, "_links": _link(f"contacts/{i}")} for i in contacts],
            "companies": [{"id": company_id, "_links": _link(f"companies/{company_id}")}] if company_id else [],
        }
        if reason_id:
            embedded["loss_reason"] = [{"id": reason_id, "name": dict((r, n) for r, n, _ in C.LOSS_REASONS)[reason_id],
                                        "_links": _link(f"leads/loss_reasons/{reason_id}")}]
        lead = {
            "id": lid, "name": "Заказ: " + ", ".join(f"{p.name} ×{q}" for p, q in d.lines),
            "price": d.amount_kop // 100, "responsible_user_id": d.manager, "group_id": 0,
            "status_id": status, "pipeline_id": _pipeline_id(d.pipeline), "loss_reason_id": reason_id,
            "created_by": d.manager, "updated_by": d.manager, "created_at": ids.unix(d.created),
            "updated_at": ids.unix(self._lead_updated(d)), "closed_at": ids.unix(d.closed) if closed else None,
            "closest_task_at": None, "is_deleted": d.deleted_at is not None,
            "custom_fields_values": cfv or None, "score": None, "account_id": ACC, "labor_cost": None,
            "_links": _link(f"leads/{lid}"), "_embedded": embedded,
        }
        self.files["deleted_leads" if d.deleted_at is not None else "leads"].write(lead)
        self._events(c, d, lid, path)
        if not closed and d.deleted_at is None:
            self._open_task(c, d, lid, path[-1][0])

    def _events(self, c: Customer, d: Deal, lid: int, path) -> None:
        pid = _pipeline_id(d.pipeline)
        before = None
        for n, (when, status) in enumerate(path):
            after = [{"lead_status": {"id": status, "pipeline_id": pid}}]
            self._event(lid, n, "lead_added" if before is None else "lead_status_changed", when, d.manager,
                        after, [] if before is None else [{"lead_status": {"id": before, "pipeline_id": pid}}])
            before = status
        if d.deleted_at is not None:
            self._event(lid, len(path), "lead_deleted", d.deleted_at, d.manager, [], [])

    def _event(self, lid, n, kind, when, user, after, before) -> None:
        ts = ids.unix(when)
        eid = ulid(ts * 1000, lid * 16 + n)
        self.files["events"].write({
            "id": eid, "type": kind, "entity_id": lid, "entity_type": "lead",
            "created_by": user, "created_at": ts, "value_after": after, "value_before": before,
            "account_id": ACC, "_links": _link(f"events/{eid}"),
            "_embedded": {"entity": {"id": lid, "_links": _link(f"leads/{lid}")}}})

    def _open_task(self, c: Customer, d: Deal, lid: int, since: dt.datetime) -> None:
        tid = ids.amo_sub_id(c.index, 1000 - (d.k % 20))
        self.files["tasks"].write({
            "id": tid, "created_by": d.manager, "updated_by": d.manager, "created_at": ids.unix(since),
            "updated_at": ids.unix(since), "responsible_user_id": d.manager, "group_id": 0, "entity_id": lid,
            "entity_type": "leads", "duration": 0, "is_completed": False, "task_type_id": 1,
            "text": "Связаться с клиентом по заказу", "result": [],
            "complete_till": ids.unix(since + dt.timedelta(days=2)), "account_id": ACC,
            "_links": _link(f"tasks/{tid}")})

    def _activities(self, c: Customer) -> None:
        today = self.period.today_dt
        for a in c.activities:
            if a.system != "amocrm" or a.at >= today:
                continue
            sub = ids.amo_sub_id(c.index, a.k)
            ts = ids.unix(a.at)
            person = c.persons[a.contact_j]
            common = {"id": sub, "created_by": a.manager, "updated_by": a.manager, "created_at": ts,
                      "updated_at": ts, "responsible_user_id": a.manager, "group_id": 0}
            if a.kind == "call":
                self.files["notes_contacts"].write({
                    **common, "entity_id": ids.amo_contact_id(c.index, a.contact_j),
                    "note_type": "call_in" if a.incoming else "call_out",
                    "params": {"uniq": f"{sub:x}-{c.index:x}", "duration": a.duration, "source": "Телефония",
                               "link": "", "phone": ids.phone_format(person.phone, 0)},
                    "account_id": ACC, "_links": _link(f"contacts/notes/{sub}")})
            elif a.kind in ("complaint", "preference"):
                target = "leads" if a.kind == "complaint" else "contacts"
                entity = (ids.amo_lead_id(c.index, a.deal_k) if target == "leads"
                          else ids.amo_contact_id(c.index, a.contact_j))
                self.files[f"notes_{target}"].write({
                    **common, "entity_id": entity, "note_type": "common", "params": {"text": a.text},
                    "account_id": ACC, "_links": _link(f"{target}/notes/{sub}")})
            elif a.kind == "meeting":
                self.files["tasks"].write({
                    **common, "entity_id": ids.amo_lead_id(c.index, a.deal_k), "entity_type": "leads",
                    "duration": a.duration, "is_completed": True, "task_type_id": 2, "text": a.text,
                    "result": {"text": "Встреча проведена"}, "complete_till": ts, "account_id": ACC,
                    "_links": _link(f"tasks/{sub}")})

    def close(self) -> dict[str, int]:
        return {f"amocrm/{name}.jsonl": f.close() for name, f in self.files.items()}


def _completeness(manager) -> float:
    return next((c for uid, _, _, c in C.AMO_USERS if uid == manager), 0.5)
