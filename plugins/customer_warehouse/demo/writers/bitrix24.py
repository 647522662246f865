"""Bitrix24 REST rows of the HoReCa wholesale portal: deals, contacts, companies, activities, settings.

Rows look as ``crm.*.list`` with ``select: ["*", "UF_*", "PHONE", "EMAIL"]`` returns them: UPPER_CASE
keys, every scalar a string (ids, money ``"12345.60"``, flags ``"Y"``/``"N"``), ISO dates with
``+03:00``, multi-fields as ``[{"ID", "VALUE_TYPE", "VALUE", "TYPE_ID"}]``, null when empty.
Open deals keep the stage reached by ``today``; their planned CLOSEDATE never lies past ``today``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from .. import catalog as C
from .. import ids
from ..model import Customer, Deal, Period
from .common import Sinks, money_text

OPEN_STAGES = ("NEW", "PREPARATION", "PREPAYMENT_INVOICE", "EXECUTING", "FINAL_INVOICE")
ACTIVITY_TYPES = {  # kind → (TYPE_ID, PROVIDER_ID, PROVIDER_TYPE_ID)
    "call": ("2", "VOXIMPLANT_CALL", "CALL"),
    "complaint": ("2", "VOXIMPLANT_CALL", "CALL"),
    "meeting": ("1", "CRM_MEETING", "MEETING"),
    "email": ("4", "CRM_EMAIL", "EMAIL"),
}
USERFIELDS = (("UF_CRM_PURPOSE", "Цель покупки"), ("UF_CRM_YM_CLIENT_ID", "Yandex ClientID"),
              ("UF_CRM_LOSS_REASON", "Причина проигрыша"))


def _iso(when: dt.datetime) -> str:
    return ids.iso_msk(when)


def _multi(field_id: int, value: str, value_type: str, type_id: str) -> dict:
    return {"ID": str(field_id), "VALUE_TYPE": value_type, "VALUE": value, "TYPE_ID": type_id}


class B24Writer:
    def __init__(self, out: Path, period: Period, sinks: Sinks | None = None):
        self.period = period
        sinks = sinks or Sinks()
        d = out / "bitrix24"
        self.files = {name: sinks.jsonl(d / f"{name}.jsonl") for name in (
            "deals", "contacts", "companies", "activities", "deal_stages", "deal_userfields", "users")}
        if sinks.real:
            self._settings()

    def _settings(self) -> None:
        for i, (status_id, name, sort, semantics) in enumerate(C.B24_STAGES):
            extra = {"S": "success", "F": "failure"}.get(semantics or "", "process")
            self.files["deal_stages"].write({
                "ID": str(101 + i), "ENTITY_ID": "DEAL_STAGE", "STATUS_ID": status_id, "NAME": name,
                "NAME_INIT": name, "SORT": str(sort), "SYSTEM": "Y", "COLOR": "#39A8EF", "SEMANTICS": semantics,
                "CATEGORY_ID": "0", "EXTRA": {"SEMANTICS": extra, "COLOR": "#39A8EF"}})
        for i, (name, label) in enumerate(USERFIELDS):
            self.files["deal_userfields"].write({
                "ID": str(201 + i), "ENTITY_ID": "CRM_DEAL", "FIELD_NAME": name, "USER_TYPE_ID": "string",
                "XML_ID": None, "SORT": str(100 * (i + 1)), "MULTIPLE": "N", "MANDATORY": "N",
                "SHOW_FILTER": "E", "SHOW_IN_LIST": "Y", "EDIT_IN_LIST": "Y", "IS_SEARCHABLE": "N",
                "SETTINGS": {"SIZE": 20, "ROWS": 1, "REGEXP": "", "MIN_LENGTH": 0, "MAX_LENGTH": 0,
                             "DEFAULT_VALUE": ""},
                "EDIT_FORM_LABEL": {"ru": label}, "LIST_COLUMN_LABEL": {"ru": label}})
        for uid, first, last, _ in C.B24_USERS:
            self.files["users"].write({"ID": str(uid), "ACTIVE": True, "NAME": first, "LAST_NAME": last,
                                       "EMAIL": f"{uid}@zernoipar-opt.ru", "WORK_POSITION": "Менеджер по опту"})

    def customer(self, c: Customer) -> None:
        if c.crm != "bitrix24":
            return
        deals = [d for d in c.deals if d.system == "bitrix24" and d.served(self.period)]
        if not deals:
            return
        first = deals[0].created - dt.timedelta(minutes=5)
        last = max(self._modified(d) for d in deals)
        company = ids.b24_company_id(c.index)
        completeness = next(x for uid, _, _, x in C.B24_USERS if uid == c.manager)
        office = ids.phone_digits(c.index * ids.CONTACTS_PER_CUSTOMER + 3)
        self.files["companies"].write({
            "ID": str(company), "TITLE": c.company, "COMPANY_TYPE": "CUSTOMER", "INDUSTRY": "HOSPITALITY",
            "ASSIGNED_BY_ID": str(c.manager), "CREATED_BY_ID": str(c.manager), "MODIFY_BY_ID": str(c.manager),
            "DATE_CREATE": _iso(first), "DATE_MODIFY": _iso(last), "OPENED": "Y", "HAS_PHONE": "Y",
            "HAS_EMAIL": "N", "UF_CRM_INN": c.inn,
            "PHONE": [_multi(company * 10 + 9, ids.phone_format(office, 3), "WORK", "PHONE")], "EMAIL": None})
        for p in c.persons:
            cid = ids.b24_contact_id(c.index, p.j)
            fill = (c.index * 11 + p.j * 17) % 100 / 100
            has_email = fill < 0.4 + 0.6 * completeness
            self.files["contacts"].write({
                "ID": str(cid), "NAME": p.first, "SECOND_NAME": None, "LAST_NAME": p.last,
                "BIRTHDATE": _iso(dt.datetime.combine(p.birthday, dt.time())) if fill < completeness else "",
                "TYPE_ID": "CLIENT", "SOURCE_ID": "WEB" if c.web else "CALL", "COMPANY_ID": str(company),
                "ASSIGNED_BY_ID": str(c.manager), "ADDRESS_CITY": c.city, "DATE_CREATE": _iso(first),
                "DATE_MODIFY": _iso(last), "OPENED": "Y", "HAS_PHONE": "Y", "HAS_EMAIL": "Y" if has_email else "N",
                "PHONE": [_multi(cid * 10 + 1, ids.phone_format(p.phone, 3 if fill < 0.5 else 1), "WORK", "PHONE")],
                "EMAIL": [_multi(cid * 10 + 2, p.email, "WORK", "EMAIL")] if has_email else None})
        for d in deals:
            self._deal(c, d, company)
        for a in c.activities:
            if a.system == "bitrix24" and a.at < self.period.today_dt and a.kind in ACTIVITY_TYPES:
                self._activity(c, a)

    def _modified(self, d: Deal) -> dt.datetime:
        today = self.period.today_dt
        if not d.closed_by(self.period):
            return d.created + (today - d.created) / 2
        if d.edited is not None and d.edited < today:
            return d.edited
        return d.closed

    def _stage(self, d: Deal) -> str:
        if d.closed_by(self.period):
            return "WON" if d.outcome == "won" else ("LOSE" if d.k % 3 else "APOLOGY")
        done = (self.period.today_dt - d.created) / (d.closed - d.created)
        return OPEN_STAGES[min(int(done * len(OPEN_STAGES)), len(OPEN_STAGES) - 1)]

    def _deal(self, c: Customer, d: Deal, company: int) -> None:
        closed = d.closed_by(self.period)
        stage = self._stage(d)
        planned = min(d.created + dt.timedelta(days=7), self.period.today_dt - dt.timedelta(minutes=1))
        utm = d.utm or (None, None, None, None)
        self.files["deals"].write({
            "ID": str(ids.b24_id(c.index, d.k)),
            "TITLE": "Поставка: " + "; ".join(f"{p.name} x{q}" for p, q in d.lines),
            "TYPE_ID": "SALE" if d.pipeline == "sales" else "GOODS", "CATEGORY_ID": "0", "STAGE_ID": stage,
            "STAGE_SEMANTIC_ID": {"WON": "S", "LOSE": "F", "APOLOGY": "F"}.get(stage, "P"),
            "IS_NEW": "N", "IS_RECURRING": "N", "IS_RETURN_CUSTOMER": "Y" if d.pipeline == "growth" else "N",
            "PROBABILITY": None, "CURRENCY_ID": "RUB", "OPPORTUNITY": money_text(d.amount_kop),
            "IS_MANUAL_OPPORTUNITY": "Y", "TAX_VALUE": "0.00",
            "COMPANY_ID": str(company), "CONTACT_ID": str(ids.b24_contact_id(c.index, d.contact_j)),
            "BEGINDATE": _iso(d.created), "CLOSEDATE": _iso(d.closed if closed else planned),
            "OPENED": "Y", "CLOSED": "Y" if closed else "N", "COMMENTS": None,
            "ASSIGNED_BY_ID": str(d.manager), "CREATED_BY_ID": str(d.manager), "MODIFY_BY_ID": str(d.manager),
            "DATE_CREATE": _iso(d.created), "DATE_MODIFY": _iso(self._modified(d)),
            "SOURCE_ID": "WEB" if d.client_slot is not None else ("REPEAT_SALE" if d.pipeline == "growth" else "CALL"),
            "SOURCE_DESCRIPTION": None, "LEAD_ID": None, "ORIGINATOR_ID": None, "ORIGIN_ID": None,
            "UTM_SOURCE": utm[0], "UTM_MEDIUM": utm[1], "UTM_CAMPAIGN": utm[2], "UTM_CONTENT": None,
            "UTM_TERM": utm[3],
            "UF_CRM_PURPOSE": d.purpose,
            "UF_CRM_YM_CLIENT_ID": c.client_ids[d.client_slot] if d.client_slot is not None else None,
            "UF_CRM_LOSS_REASON": C.B24_LOSS_REASONS[d.loss] if closed and d.loss else None,
        })

    def _activity(self, c: Customer, a) -> None:
        type_id, provider, provider_type = ACTIVITY_TYPES[a.kind]
        end = a.at + dt.timedelta(seconds=a.duration)
        subject = a.text if a.kind == "complaint" else {
            "call": "Входящий звонок" if a.incoming else "Исходящий звонок",
            "meeting": "Встреча с клиентом", "email": "Счёт и закрывающие документы"}[a.kind]
        self.files["activities"].write({
            "ID": str(ids.b24_id(c.index, a.k)), "OWNER_ID": str(ids.b24_id(c.index, a.deal_k)),
            "OWNER_TYPE_ID": "2", "TYPE_ID": type_id, "PROVIDER_ID": provider, "PROVIDER_TYPE_ID": provider_type,
            "ASSOCIATED_ENTITY_ID": "0", "SUBJECT": subject, "CREATED": _iso(a.at), "LAST_UPDATED": _iso(end),
            "START_TIME": _iso(a.at), "END_TIME": _iso(end), "DEADLINE": _iso(end), "COMPLETED": "Y",
            "STATUS": "2", "RESPONSIBLE_ID": str(a.manager), "PRIORITY": "2", "NOTIFY_TYPE": "1",
            "DESCRIPTION": a.text, "DESCRIPTION_TYPE": "1", "DIRECTION": "1" if a.incoming else "2",
            "LOCATION": "", "AUTHOR_ID": str(a.manager), "EDITOR_ID": str(a.manager),
            "COMMUNICATIONS": [{"TYPE": "PHONE" if type_id != "4" else "EMAIL", "ENTITY_TYPE_ID": "3",
                                "ENTITY_ID": str(ids.b24_contact_id(c.index, a.contact_j))}]})

    def close(self) -> dict[str, int]:
        return {f"bitrix24/{name}.jsonl": f.close() for name, f in self.files.items()}
