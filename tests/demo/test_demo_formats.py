"""Every served file parses in its source's own contract format."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import yaml
from customer_warehouse.demo.writers.metrica import FIELDS

ISO_MSK = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+03:00$")
RU_MONEY = re.compile(r"^\d{1,3}( \d{3})*,\d{2}$")
RU_DATETIME = re.compile(r"^\d{2}\.\d{2}\.\d{4}( \d{2}:\d{2}(:\d{2})?)?$")
INT_ARRAY = re.compile(r"^\[(\d+(,\d+)*)?\]$")
STR_ARRAY = re.compile(r"^\[('([^'\\]|\\.)*'(,'([^'\\]|\\.)*')*)?\]$")
NUM_ARRAY = re.compile(r"^\[(\d+(\.\d+)?(,\d+(\.\d+)?)*)?\]$")


def _jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _ru_csv(path: Path) -> list[dict]:
    text = path.read_bytes().decode("cp1251")  # raises if the file is not cp1251
    assert "\r\n" in text
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=";"))


def test_amocrm_objects_have_the_v4_shape(demo):
    amo = demo.served / "amocrm"
    leads = _jsonl(amo / "leads.jsonl")
    required = {"id", "name", "price", "responsible_user_id", "status_id", "pipeline_id", "loss_reason_id",
                "created_at", "updated_at", "closed_at", "custom_fields_values", "_embedded", "_links", "account_id"}
    for lead in leads:
        assert required <= lead.keys()
        assert isinstance(lead["price"], int) and isinstance(lead["created_at"], int)
        assert lead["updated_at"] >= lead["created_at"]
        for field in lead["custom_fields_values"] or []:
            assert {"field_id", "field_name", "field_code", "field_type", "values"} <= field.keys()
            assert all("value" in v for v in field["values"])
        assert lead["_embedded"]["contacts"] and lead["_embedded"]["tags"]
        assert lead["name"].startswith("Заказ: ")
    statuses = {lead["status_id"] for lead in leads}
    assert {142, 143} <= statuses and len(statuses) > 3
    lost = [lead for lead in leads if lead["status_id"] == 143]
    assert all(lead["loss_reason_id"] for lead in lost)
    assert any(lead["loss_reason_id"] == 9001 for lead in lost)  # lost on price
    names = {f["field_name"] for lead in leads for f in lead["custom_fields_values"] or []}
    assert {"Цель покупки", "Yandex ClientID", "utm_source", "utm_term"} <= names
    assert any(lead["updated_at"] > lead["closed_at"] for lead in leads if lead["closed_at"])
    pipelines = _jsonl(amo / "pipelines.jsonl")
    assert {p["name"] for p in pipelines} == {"Продажи", "Развитие клиентов"}
    for p in pipelines:
        assert {142, 143} <= {s["id"] for s in p["_embedded"]["statuses"]}
    contacts = _jsonl(amo / "contacts.jsonl")
    codes = [{f["field_code"] for f in c["custom_fields_values"]} for c in contacts]
    assert all("PHONE" in c for c in codes)
    assert any("EMAIL" not in c for c in codes) and any("EMAIL" in c for c in codes)
    assert any(f["field_type"] == "birthday" for c in contacts for f in c["custom_fields_values"])
    assert _jsonl(amo / "companies.jsonl")
    events = _jsonl(amo / "events.jsonl")
    kinds = {e["type"] for e in events}
    assert {"lead_added", "lead_status_changed", "lead_deleted"} <= kinds
    assert len({e["id"] for e in events}) == len(events)
    deleted = _jsonl(amo / "deleted_leads.jsonl")
    assert deleted and all(d["is_deleted"] for d in deleted)
    deleted_ids = {d["id"] for d in deleted}
    assert deleted_ids == {e["entity_id"] for e in events if e["type"] == "lead_deleted"}
    assert not deleted_ids & {lead["id"] for lead in leads}
    notes = _jsonl(amo / "notes_contacts.jsonl") + _jsonl(amo / "notes_leads.jsonl")
    assert {"call_in", "call_out", "common"} <= {n["note_type"] for n in notes}
    assert any(n["params"].get("text", "").startswith("Жалоба") for n in notes)
    tasks = _jsonl(amo / "tasks.jsonl")
    assert {2} <= {t["task_type_id"] for t in tasks if t["is_completed"]}
    assert {f["code"] for f in _jsonl(amo / "custom_fields_contacts.jsonl")} >= {"PHONE", "EMAIL"}
    assert _jsonl(amo / "loss_reasons.jsonl") and _jsonl(amo / "users.jsonl")


def _bitrix_scalars_are_strings(row: dict) -> None:
    for key, value in row.items():
        if isinstance(value, list):
            for item in value:
                assert isinstance(item, dict)
        elif key not in ("EXTRA", "SETTINGS", "EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "ACTIVE"):
            assert value is None or isinstance(value, str), (key, value)


def test_bitrix24_rows_are_rest_shaped_strings(demo):
    b24 = demo.served / "bitrix24"
    deals = _jsonl(b24 / "deals.jsonl")
    for deal in deals:
        _bitrix_scalars_are_strings(deal)
        assert re.match(r"^\d+\.\d{2}$", deal["OPPORTUNITY"])
        for key in ("DATE_CREATE", "DATE_MODIFY", "CLOSEDATE"):
            assert ISO_MSK.match(deal[key]), deal[key]
        assert deal["CURRENCY_ID"] == "RUB"
    assert {"WON", "LOSE"} <= {d["STAGE_ID"] for d in deals}
    assert any(d["UF_CRM_PURPOSE"] for d in deals) and any(d["UF_CRM_YM_CLIENT_ID"] for d in deals)
    stages = _jsonl(b24 / "deal_stages.jsonl")
    assert {s["SEMANTICS"] for s in stages} == {None, "S", "F"}
    assert {s["STATUS_ID"] for s in stages} >= {d["STAGE_ID"] for d in deals}
    for name in ("contacts", "companies", "activities"):
        rows = _jsonl(b24 / f"{name}.jsonl")
        assert rows
        for row in rows:
            _bitrix_scalars_are_strings(row)
    contacts = _jsonl(b24 / "contacts.jsonl")
    for phone in (c["PHONE"][0] for c in contacts):
        assert {"VALUE", "VALUE_TYPE"} <= phone.keys()
    activities = _jsonl(b24 / "activities.jsonl")
    assert {"1", "2", "4"} <= {a["TYPE_ID"] for a in activities}
    assert {"1", "2"} == {a["DIRECTION"] for a in activities}
    assert any(a["SUBJECT"].startswith("Жалоба") for a in activities)


def test_metrica_visits_tsv_has_the_logs_api_header_and_literals(demo):
    counter_dir = next((demo.served / "metrica").iterdir())
    counter = json.loads((counter_dir / "counter.json").read_text(encoding="utf-8"))
    assert counter["timezone"] == "Europe/Moscow" and str(counter["id"]) == counter_dir.name
    lines = (counter_dir / "visits.tsv").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    header = lines[0].split("\t")
    assert header == [f"ym:s:{f}" for f in FIELDS]
    col = {name.removeprefix("ym:s:"): i for i, name in enumerate(header)}
    rows = [line.split("\t") for line in lines[1:-1]]
    assert rows and all(len(r) == len(header) for r in rows)
    assert len({r[col["visitID"]] for r in rows}) == len(rows)
    for r in rows:
        assert INT_ARRAY.match(r[col["goalsID"]]) and STR_ARRAY.match(r[col["goalsDateTime"]])
        assert STR_ARRAY.match(r[col["purchaseID"]]) and NUM_ARRAY.match(r[col["purchaseRevenue"]])
        assert r[col["dateTime"]].startswith(r[col["date"]])
        assert r[col["deviceCategory"]] in ("1", "2", "3")
    assert any(r[col["goalsID"]] != "[]" for r in rows) and any(r[col["purchaseID"]] != "[]" for r in rows)
    assert {"organic", "ad", "direct"} <= {r[col["lastsignTrafficSource"]] for r in rows}
    # the search-phrase report counts exactly the visits that carried a phrase
    with_phrase = sum(1 for r in rows if r[col["lastsignTrafficSource"]] == "organic"
                      or (r[col["lastsignTrafficSource"]] == "ad" and r[col["lastsignUTMSource"]] == "yandex"))
    phrases = _jsonl(counter_dir / "search_phrases.jsonl")
    assert sum(p["ym:s:visits"] for p in phrases) == with_phrase
    assert all(1 <= p["ym:s:users"] <= p["ym:s:visits"] for p in phrases)
    starts = {(r[col["date"]], r[col["startURL"]]) for r in rows}
    assert all((p["ym:s:date"], p["ym:s:startURL"]) in starts for p in phrases)


def test_crm_files_are_russian_excel_csv(demo):
    crm = demo.served / "files" / "crm"
    orders = _ru_csv(crm / "orders.csv")
    assert list(orders[0]) == ["order_id", "customer_id", "ordered_at", "amount", "status", "product",
                               "quantity", "cost", "manager"]
    for o in orders:
        assert RU_MONEY.match(o["amount"]) and RU_MONEY.match(o["cost"]) and RU_DATETIME.match(o["ordered_at"])
        assert o["status"] in ("won", "cancelled")
    customers = _ru_csv(crm / "customers.csv")
    assert all(c["phone"].startswith("8") for c in customers)
    assert {o["customer_id"] for o in orders} <= {c["customer_id"] for c in customers}
    assert _ru_csv(crm / "interactions.csv")
    costs = _ru_csv(crm / "marketing_costs.csv")
    assert costs and all(RU_MONEY.match(c["cost"]) and RU_DATETIME.match(c["cost_date"]) for c in costs)


def test_surveys_come_in_their_channels_shapes_with_mappings(demo):
    surveys = demo.served / "files" / "surveys"
    mapping = yaml.safe_load((surveys / "nps.mapping.yml").read_text(encoding="utf-8"))
    rows = _ru_csv(surveys / "nps.csv")
    header = set(rows[0])
    assert {mapping["submitted_at"], mapping["response_id"], *mapping["columns"]} <= header
    assert set(mapping["columns"].values()) <= {"purpose", "nps", "satisfaction", "exit_reason", "interests",
                                                 "values", "respondent_email", "respondent_phone",
                                                 "respondent_client_id"}
    nps_col = next(k for k, v in mapping["columns"].items() if v == "nps")
    assert all(0 <= int(r[nps_col]) <= 10 for r in rows)
    for form_dir in (demo.served / "typeform").iterdir():
        form = json.loads((form_dir / "form.json").read_text(encoding="utf-8"))
        refs = {f["ref"] for f in form["fields"]}
        items = _jsonl(form_dir / "responses.jsonl")
        assert items
        for item in items:
            assert {"token", "submitted_at", "landed_at", "hidden", "answers"} <= item.keys()
            assert item["submitted_at"].endswith("Z")
            assert {a["field"]["ref"] for a in item["answers"]} <= refs
        assert [i["submitted_at"] for i in items] == sorted(i["submitted_at"] for i in items)
        m = yaml.safe_load((demo.served / "survey_mappings" / f"{form['id']}.mapping.yml").read_text(encoding="utf-8"))
        assert set(m["fields"]) <= refs and m["hidden"] == {"client_id": "respondent_client_id",
                                                             "email": "respondent_email"}
    for survey_dir in (demo.served / "yandex_forms").iterdir():
        survey = json.loads((survey_dir / "survey.json").read_text(encoding="utf-8"))
        slugs = {q["slug"] for q in survey["questions"]}
        answers = _jsonl(survey_dir / "answers.jsonl")
        assert answers
        for a in answers:
            assert set(a["answer"]["data"]) <= slugs and "exit_reason" in a["answer"]["data"]
        assert (demo.served / "survey_mappings" / f"{survey['id']}.mapping.yml").exists()


def test_metrica_escaping_round_trips_through_a_clickhouse_style_reader():
    from customer_warehouse.demo.writers.metrica import escape, str_array

    tricky = "a\tb\nc\\d'e"
    field = escape(tricky)
    assert "\t" not in field and "\n" not in field
    unescaped = re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), field)
    assert unescaped == tricky
    array = str_array(["it's", "back\\slash"])
    assert STR_ARRAY.match(array) and array == r"['it\'s','back\\slash']"
    assert escape("plain") == "plain"
