"""A small raw dataset for the dbt build, landed through RawBatch so the shapes match the loaders.

Four customers hide in it, each seen by several systems:

* Anna — amoCRM contact 1001 (leads 3001–3003, deleted lead 3006), Bitrix24 contact 22 (same
  email, deal 33), file customer F2 (same phone in another format), ClientID CID1, survey R1;
* Romashka café — amoCRM company 2001 with contact 1002 (leads 3004 won, 3005 lost, 3007 open);
* Utro café — Bitrix24 company 11 with contact 21 (deal 31 won, 32 lost), ClientID CID2;
* an office — file customer F1 (orders O1–O5) and survey R2 by phone.

Survey R3 and ClientID CID9 match nobody and must not become customers.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
from customer_warehouse.loading import Column, RawBatch, RawTable
from customer_warehouse.warehouse import WarehouseDSN
from psycopg.conninfo import conninfo_to_dict

RUN_DATE = dt.date(2026, 11, 20)
MSK = ZoneInfo("Europe/Moscow")
ACC = "zernoipar"
PORTAL = "zernoipar.bitrix24.ru"
EXPECTED_REVENUE = Decimal("82001.05")


def unix(y, m, d, h=12) -> int:
    return int(dt.datetime(y, m, d, h, tzinfo=MSK).timestamp())


def iso(y, m, d, h=12) -> str:
    return dt.datetime(y, m, d, h, tzinfo=MSK).isoformat()


def cf(field_id, name, value, code=None, ftype="text"):
    return {"field_id": field_id, "field_name": name, "field_code": code, "field_type": ftype,
            "values": [{"value": value}]}


def _crm_table(schema, name, id_type="bigint", entity_type=False, deleted=False, owner="account"):
    cols = [Column(owner, "text")]
    key = [owner]
    if entity_type:
        cols.append(Column("entity_type", "text"))
        key.append("entity_type")
    cols += [Column("id", id_type), Column("updated_at", "timestamptz")]
    key.append("id")
    if deleted:
        cols.append(Column("is_deleted", "boolean not null default false"))
    cols.append(Column("record", "jsonb not null"))
    return RawTable(schema, name, cols, key=tuple(key), version_column="updated_at")


def _land(conn, source, table: RawTable, columns, rows, upsert=True):
    with RawBatch(conn, source, table.name, unit="test", mode="upsert" if upsert else "snapshot") as batch:
        table.ensure(conn)
        batch.read(len(rows))
        if upsert:
            batch.upsert_rows(table, columns, rows)
        else:
            batch.copy_rows(table, columns, rows)


def _amo(conn):
    now = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)

    def land(name, records, entity_type=None, deleted=None, id_text=False):
        table = _crm_table("raw_amocrm", name, "text" if id_text else "bigint", entity_type is not None,
                           deleted is not None)
        cols = ["account"] + (["entity_type"] if entity_type else []) + ["id", "updated_at"]
        cols += (["is_deleted"] if deleted is not None else []) + ["record"]
        rows = []
        for r in records:
            row = [ACC] + ([r.pop("_entity_type")] if entity_type else []) + [r["id"], now]
            row += ([r.pop("_deleted", False)] if deleted is not None else []) + [r]
            rows.append(row)
        _land(conn, "amocrm", table, cols, rows)

    land("contacts", [
        {"id": 1001, "name": "Анна Смирнова", "responsible_user_id": 501, "created_at": unix(2025, 12, 20),
         "updated_at": unix(2026, 6, 1), "custom_fields_values": [
             cf(601001, "Телефон", "8 (916) 123-45-67", "PHONE", "multitext"),
             cf(601002, "Email", " Anna@Example.com ", "EMAIL", "multitext"),
             cf(601003, "День рождения", unix(1990, 5, 17, 0), None, "birthday")],
         "_embedded": {"companies": []}},
        {"id": 1002, "name": "Пётр Иванов", "responsible_user_id": 501, "created_at": unix(2025, 11, 1),
         "updated_at": unix(2026, 1, 1), "custom_fields_values": None,
         "_embedded": {"companies": [{"id": 2001}]}},
    ])
    land("companies", [
        {"id": 2001, "name": "Кафе Ромашка", "responsible_user_id": 501, "created_at": unix(2025, 11, 1),
         "updated_at": unix(2026, 1, 1),
         "custom_fields_values": [cf(651001, "Телефон", "+7 495 111-22-33", "PHONE", "multitext")]},
    ])

    def lead(lid, status, price, closed, name, contacts=(), companies=(), extra=(), reason=None):
        return {"id": lid, "name": name, "price": price, "status_id": status, "pipeline_id": 7310001,
                "loss_reason_id": reason, "responsible_user_id": 501, "created_at": unix(2025, 11, 15),
                "updated_at": closed or unix(2026, 11, 1), "closed_at": closed,
                "custom_fields_values": list(extra) or None,
                "_embedded": {"contacts": [{"id": c, "is_main": True} for c in contacts],
                              "companies": [{"id": c} for c in companies], "tags": []}}

    anna_fields = [cf(701001, "Цель покупки", "Для себя, хобби: эспрессо дома", None, "textarea"),
                   cf(701002, "Yandex ClientID", "CID1"),
                   cf(701013, "utm_campaign", "espresso_promo", "UTM_CAMPAIGN", "tracking_data")]
    land("leads", [
        lead(3001, 142, 5000, unix(2026, 1, 10), "Заказ: Ручная кофемолка", contacts=[1001], extra=anna_fields),
        lead(3002, 142, 2500.50, unix(2026, 6, 15, 10), "Заказ: Зерно спешелти 250 г", contacts=[1001]),
        lead(3003, 142, 1000, unix(2026, 6, 15, 18), "Заказ: Зерно спешелти 250 г ×2", contacts=[1001]),
        {**lead(3006, 142, 99999, unix(2026, 7, 1), "Заказ: дубль", contacts=[1001]), "_deleted": True},
        lead(3004, 142, 30000, unix(2025, 12, 1), "Заказ: Зерно HoReCa 5 кг", contacts=[1002], companies=[2001]),
        lead(3005, 143, 18000, unix(2026, 3, 1), "Заказ: Зерно HoReCa 5 кг", companies=[2001], reason=9001),
        lead(3007, 61000002, 7000, None, "Заказ: Молоко для бариста (ящик)", contacts=[1002]),
    ], deleted=True)
    land("users", [{"id": 501, "name": "Мария Менеджер"}])
    land("loss_reasons", [{"id": 9001, "name": "Дорого, ушёл к конкуренту"}])
    land("pipelines", [{"id": 7310001, "name": "Продажи", "_embedded": {"statuses": [
        {"id": 61000002, "name": "Квалификация", "sort": 20}, {"id": 142, "name": "Успешно", "sort": 10000},
        {"id": 143, "name": "Закрыто и не реализовано", "sort": 11000}]}}])
    land("notes", [
        {"id": 1, "_entity_type": "leads", "entity_id": 3004, "note_type": "common", "created_by": 501,
         "responsible_user_id": 501, "created_at": unix(2026, 1, 5), "params": {"text": "зерно пришло пережаренным"}},
        {"id": 2, "_entity_type": "contacts", "entity_id": 1001, "note_type": "call_in", "created_by": 501,
         "responsible_user_id": 501, "created_at": unix(2026, 10, 30), "params": {"duration": 120}},
    ], entity_type=True)
    land("tasks", [
        {"id": 7001, "entity_id": 3004, "entity_type": "leads", "task_type_id": 2, "text": "Дегустация",
         "is_completed": True, "result": {"text": "Встреча проведена"}, "responsible_user_id": 501,
         "created_at": unix(2025, 11, 20), "complete_till": unix(2025, 11, 25)},
    ])
    land("events", [
        {"id": "ev1", "type": "lead_status_changed", "entity_id": 3001, "entity_type": "lead", "created_by": 501,
         "created_at": unix(2026, 1, 10), "value_after": [{"lead_status": {"id": 142, "pipeline_id": 7310001}}],
         "value_before": [{"lead_status": {"id": 61000002, "pipeline_id": 7310001}}]},
        {"id": "ev2", "type": "entity_tag_added", "entity_id": 3001, "entity_type": "lead", "created_by": 501,
         "created_at": unix(2026, 1, 10)},
    ], id_text=True)


def _b24(conn):
    now = dt.datetime(2026, 11, 19, tzinfo=dt.UTC)

    def land(name, records):
        table = _crm_table("raw_bitrix24", name, deleted=True, owner="portal")
        rows = [[PORTAL, int(r["ID"]), now, False, r] for r in records]
        _land(conn, "bitrix24", table, ["portal", "id", "updated_at", "is_deleted", "record"], rows)

    land("companies", [{"ID": "11", "TITLE": "Кофейня Утро", "INDUSTRY": "HOSPITALITY", "ASSIGNED_BY_ID": "7",
                        "DATE_CREATE": iso(2026, 1, 1), "ADDRESS_CITY": "Москва",
                        "PHONE": [{"ID": "1", "VALUE_TYPE": "WORK", "VALUE": "+7 495 000-11-22"}],
                        "EMAIL": [{"ID": "2", "VALUE_TYPE": "WORK", "VALUE": "utro@cafe.ru"}]}])
    land("contacts", [
        {"ID": "21", "NAME": "Иван", "LAST_NAME": "Петров", "COMPANY_ID": "11", "ASSIGNED_BY_ID": "7",
         "DATE_CREATE": iso(2026, 1, 1), "BIRTHDATE": "", "PHONE": [{"ID": "3", "VALUE": "9261112233"}],
         "EMAIL": None},
        {"ID": "22", "NAME": "Анна", "LAST_NAME": "Смирнова", "COMPANY_ID": "0", "ASSIGNED_BY_ID": "7",
         "DATE_CREATE": iso(2026, 9, 1), "BIRTHDATE": iso(1990, 5, 17, 0), "PHONE": None,
         "EMAIL": [{"ID": "4", "VALUE": "anna@example.com"}]},
    ])

    def deal(did, stage, amount, closed, title, contact="0", company="0", **extra):
        return {"ID": str(did), "TITLE": title, "STAGE_ID": stage, "CATEGORY_ID": "0", "OPPORTUNITY": amount,
                "CURRENCY_ID": "RUB", "CONTACT_ID": contact, "COMPANY_ID": company, "ASSIGNED_BY_ID": "7",
                "DATE_CREATE": iso(2026, 7, 1), "DATE_MODIFY": closed, "CLOSEDATE": closed,
                "CLOSED": "Y" if stage in ("WON", "LOSE") else "N", **extra}

    land("deals", [
        deal(31, "WON", "12000.00", iso(2026, 9, 1), "Зерно HoReCa 5 кг", "21", "11",
             UF_CRM_PURPOSE="Для нашей кофейни", UF_CRM_YM_CLIENT_ID="CID2"),
        deal(32, "LOSE", "9000.00", iso(2026, 10, 1), "Молоко", company="11",
             UF_CRM_LOSS_REASON="Дорого, ушли к другому поставщику"),
        deal(33, "WON", "1500.00", iso(2026, 10, 1), "Подарочный набор", contact="22"),
    ])
    land("activities", [
        {"ID": "41", "OWNER_TYPE_ID": "2", "OWNER_ID": "31", "TYPE_ID": "2", "DIRECTION": "1",
         "SUBJECT": "Входящий звонок", "START_TIME": iso(2026, 8, 25), "COMPLETED": "Y", "RESPONSIBLE_ID": "7"},
        {"ID": "42", "OWNER_TYPE_ID": "2", "OWNER_ID": "31", "TYPE_ID": "2", "DIRECTION": "1",
         "SUBJECT": "доставка опоздала на два дня", "START_TIME": iso(2026, 9, 5), "COMPLETED": "Y",
         "RESPONSIBLE_ID": "7"},
    ])
    stages = RawTable("raw_bitrix24", "deal_stages",
                      [Column("portal"), Column("entity_id"), Column("status_id"), Column("updated_at", "timestamptz"),
                       Column("record", "jsonb not null")], key=("portal", "entity_id", "status_id"))
    rows = [[PORTAL, "DEAL_STAGE", s, now, {"ENTITY_ID": "DEAL_STAGE", "STATUS_ID": s, "NAME": n, "SORT": "10",
                                             "SEMANTICS": sem}]
            for s, n, sem in (("NEW", "Новая", None), ("WON", "Сделка успешна", "S"), ("LOSE", "Провалена", "F"))]
    _land(conn, "bitrix24", stages, ["portal", "entity_id", "status_id", "updated_at", "record"], rows)


def _files(conn):
    def land(name, columns, rows):
        table = RawTable("raw_crm_files", name, [Column(n, t) for n, t in columns]
                         + [Column("record", "jsonb not null"), Column("row_number", "bigint not null")])
        names = [n for n, _ in columns]
        full = [[*r, {k: (None if v is None else str(v)) for k, v in zip(names, r, strict=True)}, i + 1]
                for i, r in enumerate(rows)]
        _land(conn, "crm_files", table, [*names, "record", "row_number"], full, upsert=False)

    land("customers", [("customer_id", "text"), ("name", "text"), ("email", "text"), ("phone", "text"),
                       ("city", "text"), ("type", "text")], [
        ["F1", "ООО Офис", "office@corp.ru", "+7 (903) 555-66-77", "Москва", "b2b"],
        ["F2", "Анна С.", None, "8-916-123-45-67", "Москва", "b2c"],
    ])
    land("orders", [("order_id", "text"), ("customer_id", "text"), ("ordered_at", "timestamptz"),
                    ("amount", "numeric(18,2)"), ("status", "text"), ("product", "text"), ("quantity", "numeric"),
                    ("cost", "numeric(18,2)"), ("manager", "text")], [
        ["O1", "F1", dt.datetime(2026, 2, 1, 12, tzinfo=MSK), Decimal("10000"), "выполнен", "Кофе для офиса 1 кг",
         1, Decimal("6000"), "Ольга"],
        ["O2", "F1", dt.datetime(2026, 5, 1, 12, tzinfo=MSK), Decimal("8000"), "won", "Кофе для офиса 1 кг", 1,
         None, "Ольга"],
        ["O3", "F1", dt.datetime(2026, 8, 1, 12, tzinfo=MSK), Decimal("9000.55"), None, "Чистящие таблетки", 1,
         None, "Ольга"],
        ["O4", "F2", dt.datetime(2026, 4, 10, 12, tzinfo=MSK), Decimal("3000"), "won", "Капсулы (50 шт)", 2, None,
         "Ольга"],
        ["O5", "F1", dt.datetime(2026, 9, 1, 12, tzinfo=MSK), Decimal("5000"), "отменен", "Кофе для офиса 1 кг", 1,
         None, "Ольга"],
    ])
    land("interactions", [("interaction_id", "text"), ("customer_id", "text"), ("occurred_at", "timestamptz"),
                          ("channel", "text"), ("kind", "text"), ("manager", "text"), ("note", "text")], [
        ["I1", "F1", dt.datetime(2026, 2, 1, 10, tzinfo=MSK), "телефон", "звонок", "Ольга", "уточнили доставку"],
        ["I2", "F1", dt.datetime(2026, 8, 5, 10, tzinfo=MSK), "телефон", "жалоба", "Ольга", "кофемашина сломалась"],
    ])
    land("marketing_costs", [("cost_date", "date"), ("utm_source", "text"), ("utm_medium", "text"),
                             ("utm_campaign", "text"), ("cost", "numeric(18,2)")], [
        [dt.date(2026, 1, 5), "yandex", "cpc", "espresso_promo", Decimal("3000")],
        [dt.date(2026, 8, 1), "vk", "cpc", "office_push", Decimal("1000")],
    ])


def _surveys(conn):
    table = RawTable("raw_surveys", "responses", [
        Column("channel"), Column("form_id"), Column("response_id"), Column("submitted_at", "timestamptz"),
        Column("respondent_email"), Column("respondent_phone"), Column("respondent_client_id"),
        Column("answers", "jsonb not null"), Column("record", "jsonb not null")],
        key=("channel", "form_id", "response_id"))
    rows = [
        ["typeform", "purpose", "R1", dt.datetime(2026, 2, 1, tzinfo=MSK), "ANNA@example.com", None, None,
         {"purpose": "Варю кофе дома, это моё хобби", "nps": 10, "satisfaction": 5}],
        ["file", "exit", "R2", dt.datetime(2026, 10, 1, tzinfo=MSK), None, "+79035556677", None,
         {"exit_reason": "Нашли дешевле у другого поставщика", "nps": 3}],
        ["yandex_forms", "exit", "R3", dt.datetime(2026, 10, 2, tzinfo=MSK), "stranger@mail.ru", None, "CID9",
         {"exit_reason": "Больше не нужно"}],
    ]
    _land(conn, "typeform", table, [c.name for c in table.columns], [[*r, {"raw": True}] for r in rows])


def _metrica(conn):
    names = ["visit_id", "client_id", "date_time", "is_new_user", "start_url", "page_views", "visit_duration",
             "bounce", "lastsign_traffic_source", "lastsign_utm_source", "lastsign_utm_medium",
             "lastsign_utm_campaign", "lastsign_utm_term"]
    visits = RawTable("raw_metrica", "visits", [Column("counter_id", "bigint not null"),
                                                Column("visit_date", "date not null"), Column("counter_timezone")]
                      + [Column(n) for n in names])
    rows = [
        [555, dt.date(2026, 1, 5), "Europe/Moscow", "9001", "CID1", "2026-01-05 23:30:00", "1",
         "https://zernoipar.ru/hobby?utm_source=yandex", "5", "300", "0", "ad", "yandex", "cpc", "espresso_promo",
         "espresso_home"],
        [555, dt.date(2026, 8, 20), "Europe/Moscow", "9002", "CID2", "2026-08-20 10:00:00", "1",
         "https://zernoipar.ru/horeca", "3", "100", "0", "organic", "", "", "", ""],
        [555, dt.date(2026, 8, 21), "Europe/Moscow", "9003", "CID9", "2026-08-21 10:00:00", "1",
         "https://zernoipar.ru/gifts", "1", "0", "1", "direct", "", "", "", ""],
    ]
    _land(conn, "metrica", visits, [c.name for c in visits.columns], rows, upsert=False)
    phrases = RawTable("raw_metrica", "search_phrases", [
        Column("counter_id", "bigint not null"), Column("report_date", "date not null"), Column("search_phrase"),
        Column("start_url"), Column("utm_source"), Column("utm_medium"), Column("utm_campaign"), Column("utm_term"),
        Column("visits", "numeric"), Column("users", "numeric"), Column("sampled", "boolean"),
        Column("sample_share", "numeric"), Column("record", "jsonb not null")])
    _land(conn, "metrica", phrases, [c.name for c in phrases.columns], [
        [555, dt.date(2026, 1, 5), "как приготовить эспрессо дома", "https://zernoipar.ru/hobby", None, None, None,
         None, 12, 10, False, 1, {}],
        [555, dt.date(2026, 1, 5), "зерно для кофейни", "https://zernoipar.ru/horeca", None, None, None, None, 7, 7,
         False, 1, {}],
    ], upsert=False)


def load_small_raw(uri: str) -> None:
    with psycopg.connect(uri) as conn:
        for part in (_amo, _b24, _files, _surveys, _metrica):
            part(conn)


MARTS = ["customer_profitability", "whale_curve", "interaction_history", "customer_episodes",
         "manager_card_completeness", "customer_jobs", "jtbd_segments", "customer_churn", "customer_360",
         "customer_kpis", "customer_source_keys", "churn_model"]


def dsn_from_uri(uri: str) -> WarehouseDSN:
    info = conninfo_to_dict(uri)
    return WarehouseDSN(host=info.get("host", "localhost"), port=int(info.get("port", 5432)),
                        user=info.get("user", "postgres"), password=info.get("password", ""),
                        dbname=info["dbname"])
