"""CRM file exports into raw_crm_files: typed values, quarantine, snapshot replacement, errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.sources import Window, crm_files

MSK = ZoneInfo("Europe/Moscow")
WINDOW = Window.for_day(dt.date(2026, 11, 20))

ORDERS_RU = (
    "Номер заказа;ID клиента;Дата;Сумма;Статус;Товар;Кол-во;Себестоимость;Менеджер;Скидка\r\n"
    "1001;C1;05.01.2026 14:30;1 234,56;;Зерно спешелти 250 г;2;600,00;Анна;5%\r\n"
    "1002;C2;06.01.2026;\"-1 000,5 руб.\";возврат;Капсулы (50 шт);1;;Борис;\r\n"
    "1003;C1;не дата;100;;;;;;\r\n"
    "1001;C3;07.01.2026;50;;;;;;\r\n"
    "1004;;07.01.2026;50;;;;;;\r\n"
    "1005;C4;08.01.2026;70\r\n"
    "1006;C4;08.01.2026;70;;;много;;;\r\n"
    ";;;;;;;;;\r\n"
)


def _cfg(path) -> SourceConfig:
    return SourceConfig("crm_files_default", "fs", extra={"path": str(path)})


def _checksum(wh, table: str) -> str:
    cols = {
        "orders": "order_id, customer_id, ordered_at, amount, status, product, quantity, cost, manager, record, row_number",
        "customers": "customer_id, name, email, phone, city, type, record, row_number",
    }[table]
    return wh.execute(
        f"select md5(string_agg(t::text, '|' order by row_number)) from "
        f"(select {cols} from raw_crm_files.{table}) t"
    ).fetchone()[0]


def test_cp1251_orders_typed_quarantined_and_balanced(tmp_path, wh):
    (tmp_path / "orders.csv").write_bytes(ORDERS_RU.encode("cp1251"))
    [result] = crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (7, 3, 4)

    rows = wh.execute(
        "select order_id, customer_id, ordered_at, amount, status, product, quantity, cost, manager "
        "from raw_crm_files.orders order by order_id"
    ).fetchall()
    assert rows[0] == ("1001", "C1", dt.datetime(2026, 1, 5, 14, 30, tzinfo=MSK), Decimal("1234.56"), "won",
                       "Зерно спешелти 250 г", Decimal("2"), Decimal("600.00"), "Анна")
    assert rows[1][2:5] == (dt.datetime(2026, 1, 6, tzinfo=MSK), Decimal("-1000.50"), "возврат")
    assert [r[0] for r in rows] == ["1001", "1002", "1006"]
    assert rows[2][6] is None  # an unreadable optional quantity is NULL, the original stays in record

    record, number = wh.execute(
        "select record, row_number from raw_crm_files.orders where order_id = '1006'").fetchone()
    assert record["Кол-во"] == "много" and number == 8

    reasons = dict(wh.execute("select row_number, reason from raw_meta.quarantine order by row_number").fetchall())
    assert reasons[4].startswith("ordered_at: not a date: 'не дата'")
    assert reasons[5] == "duplicate order_id '1001' in the file: the first row is kept"
    assert reasons[6] == "customer_id: required value is empty"
    assert reasons[7] == "wrong number of columns: 4, header has 10"
    raw = wh.execute("select raw_text from raw_meta.quarantine where row_number = 5").fetchone()[0]
    assert raw == "1001;C3;07.01.2026;50;;;;;;"

    detail = wh.execute("select detail from raw_meta.load_batches where status = 'loaded'").fetchone()[0]
    assert detail["unknown_columns"] == ["Скидка"]
    assert detail["encoding"] == "cp1251" and detail["delimiter"] == ";" and detail["duplicate_keys"] == 1
    assert detail["unparsed_optional_values"] == {"quantity": 1} and detail["blank_rows"] == 1


def test_same_files_twice_give_identical_snapshot(tmp_path, wh):
    (tmp_path / "orders.csv").write_bytes(ORDERS_RU.encode("cp1251"))
    customers = "\ufeffcustomer_id,name,email,phone,city,type\nC1,Анна,  Anna@Mail.RU ,8 (916) 123-45-67,Москва,b2c\n"
    (tmp_path / "customers.csv").write_text(customers, encoding="utf-8")
    cfg = _cfg(tmp_path)
    crm_files.extract_load(cfg, "default", WINDOW, wh)
    first = (_checksum(wh, "orders"), _checksum(wh, "customers"))
    full = Window.for_day(WINDOW.business_day, full=True)  # a full load reads the files again
    crm_files.extract_load(cfg, "default", full, wh)
    assert (_checksum(wh, "orders"), _checksum(wh, "customers")) == first
    assert wh.execute("select count(*) from raw_crm_files.orders").fetchone()[0] == 3
    assert wh.execute("select email, phone from raw_crm_files.customers").fetchone() == ("anna@mail.ru", "79161234567")
    ledger = wh.execute("select entity, rows_read, rows_loaded, rows_quarantined from raw_meta.load_batches "
                        "order by started_at").fetchall()
    assert ledger == [("orders", 7, 3, 4), ("customers", 1, 1, 0)] * 2


def _batches(wh) -> int:
    return wh.execute("select count(*) from raw_meta.load_batches").fetchone()[0]


def test_an_unchanged_export_is_not_loaded_again(tmp_path, wh):
    (tmp_path / "orders.csv").write_bytes(ORDERS_RU.encode("cp1251"))
    cfg = _cfg(tmp_path)
    [loaded] = crm_files.extract_load(cfg, "default", WINDOW, wh)
    snapshot = _checksum(wh, "orders")

    [again] = crm_files.extract_load(cfg, "default", WINDOW, wh)  # the next night, same file
    assert again.unchanged and again.batch_id == loaded.batch_id and again.rows_read == 0
    assert _batches(wh) == 1 and _checksum(wh, "orders") == snapshot

    # what decides the parse is part of the fingerprint: another business time zone loads
    other_tz = Window.for_day(WINDOW.business_day, "Asia/Almaty")
    [reparsed] = crm_files.extract_load(cfg, "default", other_tz, wh)
    assert not reparsed.unchanged and reparsed.rows_read == 7 and _batches(wh) == 2
    snapshot = _checksum(wh, "orders")

    # rows gone from the raw table (emptied by hand): loaded again, whatever the ledger says
    wh.execute("delete from raw_crm_files.orders")
    [refilled] = crm_files.extract_load(cfg, "default", other_tz, wh)
    assert not refilled.unchanged and _batches(wh) == 3 and _checksum(wh, "orders") == snapshot

    # a changed file loads
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ordered_at,amount\n1,A,2026-01-01,10\n")
    [changed] = crm_files.extract_load(cfg, "default", other_tz, wh)
    assert not changed.unchanged and changed.rows_loaded == 1 and _batches(wh) == 4


def test_new_export_replaces_the_snapshot(tmp_path, wh):
    cfg = _cfg(tmp_path)
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ordered_at,amount\n1,A,2026-01-01,10\n2,B,2026-01-02,20\n")
    crm_files.extract_load(cfg, "default", WINDOW, wh)
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ordered_at,amount\n2,B,2026-01-02,25\n")
    crm_files.extract_load(cfg, "default", WINDOW, wh)
    assert wh.execute("select order_id, amount from raw_crm_files.orders").fetchall() == [("2", Decimal("25.00"))]


def test_missing_required_column_fails_the_file_clearly(tmp_path, wh):
    (tmp_path / "orders.csv").write_text("order_id;customer_id;ordered_at\n1;A;01.01.2026\n", encoding="utf-8")
    (tmp_path / "customers.csv").write_text("customer_id;name\nA;Анна\n", encoding="utf-8")
    with pytest.raises(crm_files.CrmFileError) as err:
        crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)
    message = str(err.value)
    assert "orders.csv" in message and "amount" in message and "'сумма'" in message
    assert "docs/crm-file-format.md" in message
    wh.commit()
    # the good file still landed; the bad one left a failed ledger row and no data
    assert wh.execute("select count(*) from raw_crm_files.customers").fetchone()[0] == 1
    statuses = dict(wh.execute("select entity, status from raw_meta.load_batches").fetchall())
    assert statuses == {"orders": "failed", "customers": "loaded"}
    assert wh.execute("select to_regclass('raw_crm_files.orders')").fetchone()[0] is None


def test_missing_orders_file_is_an_error_but_optional_files_are_skipped(tmp_path, wh):
    (tmp_path / "customers.csv").write_text("customer_id\nA\n")
    with pytest.raises(crm_files.CrmFileError, match="no orders.csv or orders.xlsx"):
        crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)


def test_xlsx_export_with_excel_dates_and_other_files(tmp_path, wh):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ORDER_ID", " Customer ID ", "ordered_at", "amount", "quantity"])
    ws.append([1001, "C1", dt.datetime(2026, 3, 1, 9, 15), 1234.5, 3])
    ws.append([1002, "C2", 46082.5, "2 000,00", None])  # a date column not formatted as a date
    wb.save(tmp_path / "orders.xlsx")
    (tmp_path / "interactions.csv").write_text(
        "interaction_id;customer_id;occurred_at;channel;kind;manager;note\n"
        "i1;C1;01.03.2026 10:00;phone;call;Анна;\"Перезвонить; обсудить опт\"\n", encoding="utf-8")
    (tmp_path / "marketing_costs.csv").write_text(
        "Дата;utm_source;utm_medium;utm_campaign;Расход\n01.03.2026;yandex;cpc;office;1 500,00\n"
        "01.03.2026;yandex;cpc;office;500\n", encoding="utf-8")
    results = crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)
    assert [(r.entity, r.rows_loaded, r.rows_quarantined) for r in results] == [
        ("orders", 2, 0), ("interactions", 1, 0), ("marketing_costs", 2, 0)]
    orders = wh.execute("select order_id, customer_id, ordered_at, amount, quantity from raw_crm_files.orders "
                        "order by 1").fetchall()
    assert orders == [
        ("1001", "C1", dt.datetime(2026, 3, 1, 9, 15, tzinfo=MSK), Decimal("1234.50"), Decimal("3")),
        ("1002", "C2", dt.datetime(2026, 3, 1, 12, 0, tzinfo=MSK), Decimal("2000.00"), None),
    ]
    assert wh.execute("select note from raw_crm_files.interactions").fetchone()[0] == "Перезвонить; обсудить опт"
    assert wh.execute("select cost_date, sum(cost) from raw_crm_files.marketing_costs group by 1").fetchall() == [
        (dt.date(2026, 3, 1), Decimal("2000.00"))]


def test_sub_folders_are_units_with_separate_snapshots(tmp_path, wh):
    for shop, amount in (("shop_a", 10), ("shop_b", 20)):
        (tmp_path / shop).mkdir()
        (tmp_path / shop / "orders.csv").write_text(f"order_id,customer_id,ordered_at,amount\n1,X,2026-01-01,{amount}\n")
    cfg = _cfg(tmp_path)
    assert crm_files.units(cfg) == ["shop_a", "shop_b"]
    for unit in crm_files.units(cfg):
        crm_files.extract_load(cfg, unit, WINDOW, wh)
    crm_files.extract_load(cfg, "shop_a", WINDOW, wh)
    assert wh.execute("select unit, amount from raw_crm_files.orders order by unit").fetchall() == [
        ("shop_a", Decimal("10.00")), ("shop_b", Decimal("20.00"))]


def test_utf8_file_with_a_cp1251_line_quarantines_that_line(tmp_path, wh):
    data = ("order_id,customer_id,ordered_at,amount,manager\n1,A,2026-01-01,10,Анна\n".encode()
            + "2,B,2026-01-01,10,Борис\n".encode("cp1251"))
    (tmp_path / "orders.csv").write_bytes(data)
    [result] = crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)
    assert (result.rows_loaded, result.rows_quarantined) == (1, 1)
    reason, raw = wh.execute("select reason, raw_text from raw_meta.quarantine").fetchone()
    assert reason == "bad encoding: not valid utf-8" and raw.startswith("2,B,2026-01-01,10,\\x")


def test_two_exports_of_one_table_are_refused_but_the_rest_loads(tmp_path, wh):
    (tmp_path / "orders.csv").write_text("order_id,customer_id,ordered_at,amount\n1,A,2026-01-01,10\n")
    (tmp_path / "customers.csv").write_text("customer_id\nA\n")
    (tmp_path / "Customers.XLSX").write_bytes(b"")
    with pytest.raises(crm_files.CrmFileError, match="keep one export of customers"):
        crm_files.extract_load(_cfg(tmp_path), "default", WINDOW, wh)
    assert wh.execute("select count(*) from raw_crm_files.orders").fetchone()[0] == 1
