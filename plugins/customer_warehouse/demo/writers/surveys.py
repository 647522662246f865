"""Survey answers: an NPS form exported as CSV, a purpose form on Typeform, an exit form on Yandex Forms.

Each channel is written the way its source delivers it and sorted by submission time:

* ``files/surveys/nps.csv`` — Russian Excel CSV (cp1251, ``;``), questions as headers, plus
  ``nps.mapping.yml`` (``form_id``, ``submitted_at``, ``response_id``, ``columns: {header: meaning}``);
* ``typeform/<form_id>/form.json`` + ``responses.jsonl`` — Responses API items (``token``,
  ``submitted_at`` in UTC, ``hidden``, ``answers`` with ``field.ref``);
* ``yandex_forms/<survey_id>/survey.json`` + ``answers.jsonl`` — ``{"id", "survey_id", "created",
  "answer": {"data": {<slug>: {"value": ...}}}, "params": {<hidden>: ...}}``.

API forms get ``survey_mappings/<form_id>.mapping.yml`` (``fields: {ref/slug: meaning}``,
``hidden: {param: meaning}``). Respondents identify themselves as people do: e-mails with stray
capitals and spaces, phones in any format, a ClientID only when the form was opened on the site.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import yaml

from .. import catalog as C
from .. import ids
from ..model import Customer, Period, SurveyResponse
from .common import Sinks, dumps

NPS_FORM = "nps_2025"
TYPEFORM_FORM = "Zp7Purps"
YANDEX_FORM = "6571a0c2e010db1a2f9e2b41"

NPS_COLUMNS = {
    "Насколько вероятно, что вы порекомендуете «Зерно и Пар» друзьям? (0–10)": "nps",
    "Насколько вы довольны обслуживанием? (1–5)": "satisfaction",
    "Что нам улучшить?": None,
    "Электронная почта": "respondent_email",
    "Телефон": "respondent_phone",
}
NPS_HEADER = ["Отметка времени", "Номер ответа", *NPS_COLUMNS]
INTERESTS = ("эспрессо", "альтернатива", "латте-арт", "обжарка", "чай", "десерты")
EXIT_OPTIONS = list(C.EXIT_ANSWERS.values())


def _utc(local: dt.datetime) -> str:
    return (local - dt.timedelta(hours=C.UTC_OFFSET_HOURS)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _typed_email(email: str, n: int) -> str:
    if n % 3 == 0:
        email = email[:1].upper() + email[1:]
    return email + (" " if n % 5 == 0 else "")


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=";", lineterminator="").writerow(values)
    return buf.getvalue()


class SurveyWriter:
    def __init__(self, out: Path, period: Period, sinks: Sinks | None = None):
        self.period = period
        self.out = out
        sinks = sinks or Sinks()
        start = period.start
        nps_dir = out / "files" / "surveys"
        tf_dir = out / "typeform" / TYPEFORM_FORM
        ya_dir = out / "yandex_forms" / YANDEX_FORM
        maps = out / "survey_mappings"
        if sinks.real:
            for d in (nps_dir, tf_dir, ya_dir, maps):
                d.mkdir(parents=True, exist_ok=True)
            self._forms(nps_dir, tf_dir, ya_dir, maps)
        self.nps = sinks.time_sorted(nps_dir / "nps.csv", _csv_line(NPS_HEADER), start, encoding="cp1251",
                                     eol="\r\n")
        self.typeform = sinks.time_sorted(tf_dir / "responses.jsonl", None, start)
        self.yandex = sinks.time_sorted(ya_dir / "answers.jsonl", None, start)

    def _forms(self, nps_dir: Path, tf_dir: Path, ya_dir: Path, maps: Path) -> None:
        def dump(path: Path, data) -> None:
            path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

        dump(nps_dir / "nps.mapping.yml", {
            "form_id": NPS_FORM, "submitted_at": "Отметка времени", "response_id": "Номер ответа",
            "columns": {k: v for k, v in NPS_COLUMNS.items() if v}})
        choices = [{"id": f"ch{i}", "ref": j.job_id, "label": j.survey_answer} for i, j in enumerate(C.JOBS)]
        (tf_dir / "form.json").write_text(dumps({
            "id": TYPEFORM_FORM, "type": "form", "title": "Для чего вы покупаете кофе?",
            "hidden": ["client_id", "email"],
            "fields": [
                {"id": "Fpurpose1", "title": "Для чего вы чаще всего покупаете у нас?", "ref": "purpose",
                 "type": "multiple_choice", "properties": {"choices": choices, "allow_multiple_selection": False}},
                {"id": "Finterest", "title": "Что вам интересно?", "ref": "interests", "type": "multiple_choice",
                 "properties": {"choices": [{"id": f"in{i}", "ref": f"in{i}", "label": x} for i, x in enumerate(INTERESTS)],
                                "allow_multiple_selection": True}},
                {"id": "Fsatisfy1", "title": "Насколько вы довольны нами?", "ref": "satisfaction",
                 "type": "opinion_scale", "properties": {"steps": 5, "start_at_one": True}},
            ],
            "_links": {"display": f"https://zernoipar.typeform.com/to/{TYPEFORM_FORM}"}}) + "\n", encoding="utf-8")
        dump(maps / f"{TYPEFORM_FORM}.mapping.yml", {
            "form_id": TYPEFORM_FORM, "channel": "typeform",
            "fields": {"purpose": "purpose", "interests": "interests", "satisfaction": "satisfaction"},
            "hidden": {"client_id": "respondent_client_id", "email": "respondent_email"}})
        (ya_dir / "survey.json").write_text(dumps({
            "id": YANDEX_FORM, "name": "Почему вы перестали у нас покупать?", "params": ["client_id", "email"],
            "questions": [
                {"id": "answer_choices_81201", "slug": "exit_reason", "label": "Почему вы перестали покупать?",
                 "type": "enum", "multiple": False,
                 "options": [{"id": f"o{i}", "slug": f"o{i}", "text": t} for i, t in enumerate(EXIT_OPTIONS)]},
                {"id": "answer_long_text_81202", "slug": "comment", "label": "Комментарий", "type": "text"}]})
            + "\n", encoding="utf-8")
        dump(maps / f"{YANDEX_FORM}.mapping.yml", {
            "form_id": YANDEX_FORM, "channel": "yandex_forms", "fields": {"exit_reason": "exit_reason"},
            "hidden": {"client_id": "respondent_client_id", "email": "respondent_email"}})

    def customer(self, c: Customer) -> None:
        for i, s in enumerate(c.surveys):
            if s.at >= self.period.today_dt:
                continue
            n = c.index * 8 + i
            person = c.persons[s.contact_j]
            email = _typed_email(person.email, n) if s.use_email else None
            phone = ids.phone_format(person.phone, n) if s.use_phone else None
            client = c.client_ids[s.client_slot] if s.client_slot is not None and c.client_ids else None
            if s.channel == "nps":
                row = [s.at.strftime("%d.%m.%Y %H:%M:%S"), str(n + 1), str(s.answers["nps"]),
                       str(s.answers["satisfaction"]), s.answers["comment"], email or "", phone or ""]
                self.nps.add(s.at, n, _csv_line(row))
            elif s.channel == "typeform":
                self.typeform.add(s.at, n, dumps(self._typeform(s, n, client, email)))
            else:
                self.yandex.add(s.at, n, dumps(self._yandex(s, n, client, email)))

    def _typeform(self, s: SurveyResponse, n: int, client: str | None, email: str | None) -> dict:
        token = f"{ids.scramble63(n + 7):016x}{ids.scramble63(n + 11):016x}"
        label = s.answers["purpose"]
        ref = next(j.job_id for j in C.JOBS if j.survey_answer == label)
        hidden = {"client_id": client or "", "email": email or ""}
        return {
            "landing_id": token, "token": token, "response_id": token,
            "landed_at": _utc(s.at - dt.timedelta(minutes=2)), "submitted_at": _utc(s.at),
            "metadata": {"user_agent": "Mozilla/5.0", "platform": "other", "referer": f"{C.SITE}/thanks",
                         "network_id": f"{ids.scramble9(n):09d}", "browser": "default"},
            "hidden": hidden, "calculated": {"score": 0},
            "answers": [
                {"field": {"id": "Fpurpose1", "type": "multiple_choice", "ref": "purpose"}, "type": "choice",
                 "choice": {"id": f"ch{[j.job_id for j in C.JOBS].index(ref)}", "ref": ref, "label": label}},
                {"field": {"id": "Finterest", "type": "multiple_choice", "ref": "interests"}, "type": "choices",
                 "choices": {"ids": [f"in{INTERESTS.index(x)}" for x in s.answers["interests"]],
                             "refs": [f"in{INTERESTS.index(x)}" for x in s.answers["interests"]],
                             "labels": list(s.answers["interests"])}},
                {"field": {"id": "Fsatisfy1", "type": "opinion_scale", "ref": "satisfaction"}, "type": "number",
                 "number": s.answers["satisfaction"]},
            ],
        }

    def _yandex(self, s: SurveyResponse, n: int, client: str | None, email: str | None) -> dict:
        text = s.answers["exit_reason"]
        data = {"exit_reason": {"value": [{"key": f"o{EXIT_OPTIONS.index(text)}", "text": text}]}}
        if n % 3 == 0:
            data["comment"] = {"value": "Спасибо, было вкусно"}
        params = {k: v for k, v in (("client_id", client), ("email", email)) if v}
        return {"id": 700_000_000 + n, "survey_id": YANDEX_FORM, "created": _utc(s.at),
                "answer": {"data": data}, "params": params}

    def close(self) -> dict[str, int]:
        return {"files/surveys/nps.csv": self.nps.close(),
                f"typeform/{TYPEFORM_FORM}/responses.jsonl": self.typeform.close(),
                f"yandex_forms/{YANDEX_FORM}/answers.jsonl": self.yandex.close()}
