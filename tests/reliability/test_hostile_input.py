"""Hostile input in the demo company's data: malformed rows, wrong encodings, a 10 MB field, NUL
bytes, SQL-like text in names, custom-field names and column headers, quotes in identifiers that
come from configuration.

Every hostile record ends either landed verbatim or quarantined with its reason, the ledger
balances, and the canary table ``public.x`` (what ``'; drop table x; --`` would drop) survives.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from customer_warehouse.sources.metrica import MetricaAPIError
from support import ledger_balanced, load_source, start_stack

pytestmark = pytest.mark.integration

SQL = "'; drop table x; --"
QUOTED = 'Robert"); drop table x; --'
HUGE = 10 * 1024 * 1024  # bytes of UTF-8
DAY = dt.date(2026, 11, 20)
START = (DAY - dt.timedelta(days=14)).isoformat()


@pytest.fixture()
def canary(conn):
    conn.execute("create table public.x (id int)")
    conn.commit()
    yield
    assert conn.execute("select to_regclass('public.x')").fetchone()[0] is not None, "table x was dropped"


def _quarantine(conn, source: str) -> list[str]:
    return sorted(r[0] for r in conn.execute("select reason from raw_meta.quarantine where source = %s", (source,)))


def _balance(conn, source: str) -> tuple[int, int, int]:
    return tuple(conn.execute("select sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
                              "from raw_meta.load_batches where source = %s and status = 'loaded'",
                              (source,)).fetchone())


# -- amoCRM ------------------------------------------------------------------------------------
def _append_jsonl(path: Path, items: list) -> None:
    with open(path, "a", encoding="utf-8") as f:
        for item in items:
            f.write((item if isinstance(item, str) else json.dumps(item, ensure_ascii=False)) + "\n")


def test_amocrm_hostile_leads_land_verbatim_or_are_quarantined(demo_copy, conn, canary):
    t = int(dt.datetime(2026, 11, 17, 12, tzinfo=dt.timezone(dt.timedelta(hours=3))).timestamp())
    lead = {"price": 100, "status_id": 142, "pipeline_id": 1, "created_at": t, "updated_at": t}
    _append_jsonl(demo_copy / "amocrm" / "leads.jsonl", [
        {"id": 990001, "name": SQL, **lead,
         "custom_fields_values": [{"field_id": 990, "field_name": SQL, "values": [{"value": QUOTED}]}]},
        {"id": 990002, "name": "Ж" * (HUGE // 2), **lead},
        {"id": 990003, "name": "nul\u0000byte", **lead},
        '"a string, not an object"',
        "[1, 2, 3]",
        {"name": "no id", **lead},
        {"id": 990004, "name": "bad time", **{**lead, "updated_at": "вчера"}},
    ])
    _append_jsonl(demo_copy / "amocrm" / "custom_fields_leads.jsonl", [{"id": 990, "name": QUOTED, "type": "text"}])
    stack = start_stack(demo_copy, only=("amocrm",))
    try:
        load_source(stack, conn, "amocrm", DAY, start_date=START, entities="leads,custom_fields")
    finally:
        stack.stop()

    names = dict(conn.execute("select id, record->>'name' from raw_amocrm.leads where id >= 990000").fetchall())
    assert names[990001] == SQL
    assert len(names[990002]) == HUGE // 2
    assert names[990003] == "nul\\u0000byte"  # jsonb cannot hold NUL: kept visibly, not lost
    assert 990004 not in names
    cf = conn.execute("select record->'custom_fields_values'->0 from raw_amocrm.leads where id = 990001").fetchone()[0]
    assert cf["field_name"] == SQL and cf["values"][0]["value"] == QUOTED
    assert conn.execute("select record->>'name' from raw_amocrm.custom_fields where id = 990").fetchone()[0] == QUOTED
    assert _quarantine(conn, "amocrm") == ["no id", "not a JSON object (list)", "not a JSON object (str)",
                                           "unparseable updated_at: 'вчера'"]
    assert ledger_balanced(conn) == []


# -- Metrica -----------------------------------------------------------------------------------
def _hostile_visits(path: Path) -> dict[str, str]:
    """Lines appended on the file's last date (it stays sorted); returns visit id → what they test."""
    raw = path.read_bytes()
    header = raw.split(b"\n", 1)[0].decode().split("\t")
    last = raw.rstrip(b"\n").rsplit(b"\n", 1)[1].decode().split("\t")
    at = {name: i for i, name in enumerate(header)}

    def line(visit_id: str, **fields) -> bytes:
        values = list(last)
        values[at["ym:s:visitID"]] = visit_id
        for name, value in fields.items():
            values[at[f"ym:s:{name}"]] = value
        return "\t".join(values).encode()

    lines = [
        line("990001", startURL="https://zernoipar.ru/?q=" + SQL.replace("'", "\\'"), referer="a\x00b"),
        line("990002", startURL="https://zernoipar.ru/" + "a" * HUGE),
        line("990003", regionCity="Москва").replace("Москва".encode(), "Москва".encode("cp1251")),
        b"990004\tonly\tthree",
    ]
    path.write_bytes(raw.rstrip(b"\n") + b"\n" + b"\n".join(lines) + b"\n")
    return {"990001": "sql + NUL", "990002": "10 MB", "990003": "cp1251", "990004": "3 columns"}


def test_metrica_hostile_lines_land_verbatim_or_are_quarantined(demo_copy, conn, canary):
    counter = json.loads((demo_copy / "manifest.json").read_text())["counters"][0]
    _hostile_visits(demo_copy / "metrica" / str(counter) / "visits.tsv")
    stack = start_stack(demo_copy, only=("metrica",))
    try:
        load_source(stack, conn, "metrica", DAY, start_date=START, search_phrases=False)
    finally:
        stack.stop()

    rows = dict(conn.execute("select visit_id, start_url from raw_metrica.visits where visit_id like '99000_'"))
    assert rows["990001"] == "https://zernoipar.ru/?q=" + SQL
    assert len(rows["990002"]) == len("https://zernoipar.ru/") + HUGE
    assert conn.execute("select referer from raw_metrica.visits where visit_id = '990001'").fetchone()[0] == "a\\0b"
    assert set(rows) == {"990001", "990002"}
    assert _quarantine(conn, "metrica") == ["3 columns where the header has 24", "not valid UTF-8"]
    read, loaded, quarantined = _balance(conn, "metrica")
    assert read == loaded + quarantined and quarantined == 2
    assert ledger_balanced(conn) == []


def test_a_metrica_field_list_with_quotes_fails_loudly_naming_the_field(demo_data, conn, canary):
    from customer_warehouse.sources.metrica import DEFAULT_VISIT_FIELDS

    bad = 'ym:s:visitID"; drop table x; --'
    stack = start_stack(demo_data, only=("metrica",))
    try:
        with pytest.raises(MetricaAPIError, match="fields") as err:
            load_source(stack, conn, "metrica", DAY, start_date=START, search_phrases=False,
                        visit_fields=[*DEFAULT_VISIT_FIELDS, bad])
    finally:
        stack.stop()
    conn.rollback()
    assert "counter" in str(err.value) and "400" in str(err.value)
    assert conn.execute("select to_regclass('raw_metrica.visits')").fetchone()[0] is None


# -- CRM files and survey files ----------------------------------------------------------------
def test_crm_export_with_hostile_header_names_and_bytes(demo_copy, conn, canary):
    path = demo_copy / "files" / "crm" / "customers.csv"
    header, *lines = path.read_bytes().decode("cp1251").splitlines()
    odd_column = 'Примечание "VIP"; drop table x; --'
    body = [f'{header};"{odd_column.replace(chr(34), chr(34) * 2)}"']
    body += [line + ";" for line in lines]
    body += [f'K9990001;"{SQL}";sql@example.ru;;Москва;физ. лицо;"{QUOTED.replace(chr(34), chr(34) * 2)}"',
             "K9990002;only;four;columns",
             "K9990003;Ъхъ Ъхъ;iv@example.ru;;Москва;физ. лицо;"]
    data = "\r\n".join(body).encode("cp1251") + b"\r\n"
    data = data.replace("Ъхъ".encode("cp1251"), b"\x98\x98")  # 0x98 is no character in cp1251
    path.write_bytes(data)
    load_source(_files_stack(demo_copy), conn, "crm_files", DAY)

    row = conn.execute("select name, record from raw_crm_files.customers where customer_id = 'K9990001'").fetchone()
    assert row[0] == SQL
    assert QUOTED in row[1].values() and any('"VIP"' in key for key in row[1])
    reasons = _quarantine(conn, "crm_files")
    assert len(reasons) == 2 and any("column" in r for r in reasons) and any("encoding" in r for r in reasons)
    assert conn.execute("select count(*) from raw_crm_files.customers where customer_id like 'K999%'").fetchone()[0] == 1
    assert ledger_balanced(conn) == []


def test_survey_mapping_meaning_and_header_with_quotes(demo_copy, conn, canary):
    folder = demo_copy / "files" / "surveys"
    question = 'Что нам "улучшить"?\'; drop table x; --'
    meaning = 'x_note"; drop table x; --'
    csv_path = folder / "nps.csv"
    text = csv_path.read_bytes().decode("cp1251").replace("Что нам улучшить?", question.replace('"', '""'), 1)
    header, rest = text.split("\n", 1)
    header = header.replace(question.replace('"', '""'), '"' + question.replace('"', '""') + '"')
    csv_path.write_bytes((header + "\n" + rest).encode("cp1251"))
    mapping_path = folder / "nps.mapping.yml"
    mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    mapping["columns"][question] = meaning
    mapping_path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    load_source(_files_stack(demo_copy), conn, "survey_files", DAY)

    answered = conn.execute("select count(*) from raw_surveys.responses where answers ? %s", (meaning,)).fetchone()[0]
    total = conn.execute("select count(*) from raw_surveys.responses").fetchone()[0]
    assert total > 0 and answered > 0
    assert conn.execute("select count(*) from raw_surveys.responses where record ? %s", (question,)).fetchone()[0] \
        == total
    assert ledger_balanced(conn) == []


def _files_stack(data: Path):
    return start_stack(data, only=())


# -- ids out of range: one hostile record must not block a whole source ------------------------
OUT_OF_RANGE_IDS = ("9223372036854775808",)  # 2**63: one beyond bigint


@pytest.mark.parametrize("raw_id", OUT_OF_RANGE_IDS)
def test_amocrm_lead_with_an_id_out_of_range_is_quarantined(demo_copy, conn, raw_id):
    t = int(dt.datetime(2026, 11, 17, 12, tzinfo=dt.timezone(dt.timedelta(hours=3))).timestamp())
    _append_jsonl(demo_copy / "amocrm" / "leads.jsonl",
                  [f'{{"id": {raw_id}, "name": "out of range", "updated_at": {t}, "created_at": {t}}}'])
    stack = start_stack(demo_copy, only=("amocrm",))
    try:
        load_source(stack, conn, "amocrm", DAY, start_date=START, entities="leads")
    finally:
        stack.stop()
    assert len(_quarantine(conn, "amocrm")) == 1
    assert conn.execute("select count(*) from raw_amocrm.leads").fetchone()[0] > 0


@pytest.mark.parametrize("raw_id", OUT_OF_RANGE_IDS)
def test_bitrix24_deal_with_an_id_out_of_range_is_quarantined(demo_copy, conn, raw_id):
    _append_jsonl(demo_copy / "bitrix24" / "deals.jsonl",
                  [f'{{"ID": {raw_id}, "TITLE": "out of range", "DATE_CREATE": "2026-11-17T12:00:00+03:00", '
                   f'"DATE_MODIFY": "2026-11-17T12:00:00+03:00", "STAGE_ID": "NEW"}}'])
    stack = start_stack(demo_copy, only=("bitrix24",))
    try:
        load_source(stack, conn, "bitrix24", DAY, start_date=START, entities="deals")
    finally:
        stack.stop()
    assert len(_quarantine(conn, "bitrix24")) == 1
    assert conn.execute("select count(*) from raw_bitrix24.deals").fetchone()[0] > 0


@pytest.mark.parametrize("source", ["amocrm", "bitrix24"])
def test_an_infinite_id_is_rejected_not_raised(source):
    from customer_warehouse.sources.amocrm import loader as amo
    from customer_warehouse.sources.bitrix24 import loader as b24

    item = json.loads('{"id": 1e999, "ID": 1e999, "updated_at": 1, "DATE_MODIFY": "2026-11-17T12:00:00+03:00"}')
    rejected = amo.Rejected if source == "amocrm" else b24.Rejected
    with pytest.raises(rejected):
        if source == "amocrm":
            amo.to_row(amo.all_entities()[0], "acme", item)
        else:
            b24.to_row(b24.ENTITIES[2], "portal", item, "Europe/Moscow")
