"""Russian-locale parsing: money, dates, encodings, delimiters, contacts, and the tabular reader."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from customer_warehouse.sources.parsing import (
    detect_encoding,
    excel_serial_to_datetime,
    normalize_email,
    normalize_header,
    normalize_phone,
    parse_date,
    parse_datetime,
    parse_decimal,
    parse_int,
    parse_money,
    sniff_delimiter,
)
from customer_warehouse.sources.tabular import TabularError, TabularFile
from hypothesis import given
from hypothesis import strategies as st

MSK = ZoneInfo("Europe/Moscow")


# -- money --------------------------------------------------------------------------------------
def _group(digits: str, sep: str) -> str:
    parts = []
    while len(digits) > 3:
        parts.insert(0, digits[-3:])
        digits = digits[:-3]
    parts.insert(0, digits)
    return sep.join(parts)


def _format(value: Decimal, style: str) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = f"{abs(value):.2f}".split(".")
    if style == "ru":
        return f"{sign}{_group(whole, ' ')},{frac}"
    if style == "ru_nbsp_rub":
        return f"{sign}{_group(whole, chr(0xA0))},{frac} ₽"
    if style == "ru_dot":
        return f"{sign}{_group(whole, ' ')}.{frac}"
    if style == "en":
        return f"{sign}{_group(whole, ',')}.{frac}"
    if style == "de":
        return f"{sign}{_group(whole, '.')},{frac}"
    if style == "minus_sign":
        return f"{chr(0x2212) if sign else ''}{_group(whole, chr(0x202F))},{frac}"
    return f"{sign}{whole}.{frac}"


@given(
    value=st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=2, allow_nan=False),
    style=st.sampled_from(["ru", "ru_nbsp_rub", "ru_dot", "en", "de", "minus_sign", "plain"]),
)
def test_money_round_trips_in_every_locale_style(value, style):
    assert parse_money(_format(value, style)) == value


@pytest.mark.parametrize(("text", "expected"), [
    ("1 234,56", "1234.56"), ("1\u00a0234,56", "1234.56"), ("1 234.56", "1234.56"),
    ("-1 234,5 ₽", "-1234.50"), ("12 руб.", "12.00"), ("(1 000,00)", "-1000.00"), ("0,5", "0.50"),
    ("1,234.5", "1234.50"), ("7", "7.00"),
])
def test_money_examples(text, expected):
    assert parse_money(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["abc", "1,2,3", "12..5", "1 234,56,7", "--"])
def test_money_refuses_garbage(text):
    with pytest.raises(ValueError, match="not a number"):
        parse_money(text)


def test_empty_money_is_none_and_numbers_pass_through():
    assert parse_money("  ") is None and parse_money(None) is None
    assert parse_decimal(1234.5) == Decimal("1234.5") and parse_int("9,0") == 9
    with pytest.raises(ValueError):
        parse_int("7,5")


# -- dates --------------------------------------------------------------------------------------
@given(st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2090, 12, 31)).map(
    lambda d: d.replace(microsecond=0)))
def test_russian_datetime_round_trips_in_business_zone(value):
    text = value.strftime("%d.%m.%Y %H:%M:%S")
    assert parse_datetime(text, "Europe/Moscow") == value.replace(tzinfo=MSK)
    assert parse_date(value.strftime("%d.%m.%Y")) == value.date()


@given(st.dates(min_value=dt.date(1950, 1, 1), max_value=dt.date(2100, 1, 1)))
def test_excel_serial_round_trips(day):
    serial = (dt.datetime.combine(day, dt.time()) - dt.datetime(1899, 12, 30)).days
    assert parse_date(str(serial), excel_serial=True) == day
    assert excel_serial_to_datetime(serial + 0.75) == dt.datetime.combine(day, dt.time(18))


def test_date_formats():
    assert parse_datetime("05.01.2026 14:30") == dt.datetime(2026, 1, 5, 14, 30, tzinfo=MSK)
    assert parse_datetime("2026-01-05T10:00:00Z") == dt.datetime(2026, 1, 5, 10, tzinfo=dt.UTC)
    assert parse_datetime("2026-01-05 10:00:00+05:00").utcoffset() == dt.timedelta(hours=5)
    assert parse_datetime("2026-01-05", "Asia/Yekaterinburg").utcoffset() == dt.timedelta(hours=5)
    assert parse_date("5.1.26") == dt.date(2026, 1, 5)
    assert parse_date("2026-01-05 00:00:00") == dt.date(2026, 1, 5)
    with pytest.raises(ValueError):
        parse_date("31.02.2026")
    with pytest.raises(ValueError):
        parse_date("46027")  # a bare number is a serial only in XLSX
    with pytest.raises(ValueError):
        parse_date("05.01.2026 14:30")


# -- contacts -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("8 (916) 123-45-67", "79161234567"), ("+7 916 123 45 67", "79161234567"), ("9161234567", "79161234567"),
    ("+7 (495) 123-45-67 доб. 123", "74951234567"), ("+375 29 123 45 67", "375291234567"), ("123", None),
    ("", None), (None, None),
])
def test_phone_normalisation(text, expected):
    assert normalize_phone(text) == expected


def test_email_normalisation():
    assert normalize_email("  Ivan.Petrov@Mail.RU ") == "ivan.petrov@mail.ru"
    assert normalize_email("mailto:a@b.ru") == "a@b.ru"
    assert normalize_email("<a@b.ru>") == "a@b.ru"
    assert normalize_email("not an email") is None and normalize_email("a@b") is None


def test_header_normalisation():
    assert normalize_header("\ufeff  Дата  Заказа ") == normalize_header("дата_заказа") == "дата заказа"
    assert normalize_header("Ёмкость") == "емкость"


# -- encodings and the tabular reader -----------------------------------------------------------
def test_cp1251_semicolon_decimal_comma(tmp_path):
    text = 'Номер;Сумма;Дата\r\n1;"1 234,56";05.01.2026\r\n2;-5,5;06.01.2026 14:30\r\n;;\r\n3;x\r\n'
    path = tmp_path / "a.csv"
    path.write_bytes(text.encode("cp1251"))
    with TabularFile(path) as f:
        rows = list(f)
        assert (f.encoding, f.delimiter, f.header, f.blank_rows) == ("cp1251", ";", ["Номер", "Сумма", "Дата"], 1)
    assert rows[0].data == {"Номер": "1", "Сумма": "1 234,56", "Дата": "05.01.2026"}
    assert parse_money(rows[0].data["Сумма"]) == Decimal("1234.56")
    assert [r.row_number for r in rows] == [2, 3, 5]
    assert rows[2].error == "wrong number of columns: 2, header has 3" and rows[2].raw_text == "3;x"


def test_utf8_bom_comma_quoted_newline_and_bad_line(tmp_path):
    body = b'id,note,amount\n1,"two\nlines",10.5\n' + "2,кривая,1\n".encode("cp1251") + b"3,ok,7\n"
    path = tmp_path / "b.csv"
    path.write_bytes(b"\xef\xbb\xbf" + body)
    with TabularFile(path) as f:
        rows = list(f)
        assert (f.encoding, f.delimiter, f.header) == ("utf-8-sig", ",", ["id", "note", "amount"])
    assert rows[0].data["note"] == "two\nlines" and rows[0].row_number == 2
    assert rows[1].row_number == 4 and rows[1].error.startswith("bad encoding")
    assert "\\xea" in rows[1].raw_text  # the undecodable bytes are kept visibly
    assert rows[2].data == {"id": "3", "note": "ok", "amount": "7"}


def test_encoding_detection_votes_by_line():
    utf = "Имя;Город\n".encode() * 5
    assert detect_encoding(utf + "Пётр;Тверь\n".encode("cp1251")) == "utf-8"
    assert detect_encoding("Имя;Город\n".encode("cp1251")) == "cp1251"
    assert detect_encoding(b"a,b\n1,2\n") == "utf-8"
    assert detect_encoding("a;b\nПётр;Тверь".encode("cp1251")) == "cp1251"  # no final newline
    assert detect_encoding("a;b\nПётр".encode()[:-1]) == "utf-8"  # a sample cut inside a character


def test_delimiter_sniffing_ignores_quoted_separators():
    assert sniff_delimiter('"a;b",c,d') == ","
    assert sniff_delimiter("a;b;c") == ";"
    assert sniff_delimiter("a\tb") == "\t"
    assert sniff_delimiter("single") == ","


def test_xlsx_values_become_text(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["order_id", "ordered_at", "amount", "serial_date", "empty"])
    ws.append([1001, dt.datetime(2026, 1, 5, 14, 30), 1234.5, 46027, None])
    ws.append([None, None, None, None, None])
    ws.append(["A-2", dt.date(2026, 1, 6), "1 000,00", None, None])
    path = tmp_path / "orders.xlsx"
    wb.save(path)
    with TabularFile(path) as f:
        rows = list(f)
        assert f.format == "xlsx" and f.excel_serial and f.blank_rows == 1
    assert rows[0].data == {"order_id": "1001", "ordered_at": "2026-01-05 14:30:00", "amount": "1234.5",
                            "serial_date": "46027", "empty": None}
    assert rows[0].row_number == 2 and rows[1].row_number == 4
    assert parse_date(rows[0].data["serial_date"], excel_serial=True) == dt.date(2026, 1, 5)
    assert parse_datetime(rows[0].data["ordered_at"]) == dt.datetime(2026, 1, 5, 14, 30, tzinfo=MSK)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\n\n")
    with pytest.raises(TabularError, match="empty file"):
        with TabularFile(path):
            pass
