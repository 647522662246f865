"""Survey exports (CSV/XLSX + mapping.yml) into raw_surveys.responses."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from customer_warehouse.connections import SourceConfig
from customer_warehouse.sources import Window, survey_files
from customer_warehouse.sources.survey_files import AnswerTyper, MappingError, load_mapping

MSK = ZoneInfo("Europe/Moscow")
WINDOW = Window.for_day(dt.date(2026, 11, 20))

MAPPING = """\
form_id: nps_2026
submitted_at: "Отметка времени"
response_id: "ID ответа"
columns:
  "Адрес электронной почты": respondent_email
  "Телефон": respondent_phone
  "ClientID": respondent_client_id
  "Для чего вы покупаете кофе?": purpose
  "Насколько вероятно, что вы порекомендуете нас друзьям?": nps
  "Оцените качество обслуживания": satisfaction
  "Что вам интересно?": interests
  "Ваш возраст": x_age
"""

HEADER = ("ID ответа;Отметка времени;Адрес электронной почты;Телефон;ClientID;Для чего вы покупаете кофе?;"
          "Насколько вероятно, что вы порекомендуете нас друзьям?;Оцените качество обслуживания;"
          "Что вам интересно?;Ваш возраст;Комментарий")
ROWS = [
    "r1;20.11.2026 10:15:00; Anna@Mail.ru ;8 916 123-45-67;1700000000123456789;Варю кофе дома, это моё хобби;"
    "9;4,5;\"Эспрессо; Альтернатива\";34;спасибо",
    "r2;20.11.2026 11:00;;;;В подарок;11;отлично;;;",
    "r3;;b@b.ru;;;Для сотрудников в офисе;8;5;;;",
    "r4;21.11.2026 09:00;not-an-email;;;Чтобы взбодриться утром;десять;3;Капсулы;;",
]


def _write(folder, rows=ROWS, name="nps_2026", mapping=MAPPING):
    (folder / f"{name}.csv").write_bytes(("\r\n".join([HEADER, *rows]) + "\r\n").encode("cp1251"))
    (folder / f"{name}.mapping.yml").write_text(mapping, encoding="utf-8")


def _cfg(path) -> SourceConfig:
    return SourceConfig("survey_files_default", "fs", extra={"path": str(path)})


def test_csv_export_lands_mapped_and_typed(tmp_path, wh):
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    assert survey_files.units(cfg) == ["nps_2026"]
    [result] = survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (4, 3, 1)

    rows = {r[0]: r[1:] for r in wh.execute(
        "select response_id, channel, form_id, submitted_at, respondent_email, respondent_phone, "
        "respondent_client_id, answers from raw_surveys.responses").fetchall()}
    channel, form, submitted, email, phone, client_id, answers = rows["r1"]
    assert (channel, form, submitted) == ("file", "nps_2026", dt.datetime(2026, 11, 20, 10, 15, tzinfo=MSK))
    assert (email, phone, client_id) == ("anna@mail.ru", "79161234567", "1700000000123456789")
    assert answers == {"purpose": "Варю кофе дома, это моё хобби", "nps": 9, "satisfaction": 4.5,
                       "interests": "Эспрессо; Альтернатива", "interests_list": ["Эспрессо", "Альтернатива"],
                       "x_age": "34"}
    # nps 11 is out of range and "отлично" not a number: the response stays, the values are null
    assert rows["r2"][6] == {"purpose": "В подарок", "nps": None, "satisfaction": None, "interests": None}
    assert rows["r4"][3] is None and rows["r4"][6]["nps"] is None

    reason, number = wh.execute("select reason, row_number from raw_meta.quarantine").fetchone()
    assert reason == "submitted_at: 'Отметка времени' is empty" and number == 4
    detail = wh.execute("select detail from raw_meta.load_batches").fetchone()[0]
    assert detail["warnings"] == {"nps_invalid": 2, "satisfaction_invalid": 1, "respondent_email_invalid": 1}
    assert detail["unmapped_columns"] == ["Комментарий"]
    record = wh.execute("select record from raw_surveys.responses where response_id = 'r2'").fetchone()[0]
    assert record["Насколько вероятно, что вы порекомендуете нас друзьям?"] == "11"


def test_reload_upserts_keeping_the_newest_submission(tmp_path, wh):
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)
    edited = ["r1;21.11.2026 12:00:00;anna@mail.ru;;;В подарок;10;5;;;",  # the respondent edited the answer
              "r2;19.11.2026 09:00;;;;Старое;1;1;;;"]  # an older version of r2 must not win
    _write(tmp_path, rows=edited)
    survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)
    got = dict(wh.execute("select response_id, answers->>'purpose' from raw_surveys.responses").fetchall())
    assert got == {"r1": "В подарок", "r2": "В подарок", "r4": "Чтобы взбодриться утром"}


def test_an_unchanged_export_under_the_same_mapping_is_not_loaded_again(tmp_path, wh):
    _write(tmp_path)
    cfg = _cfg(tmp_path)
    [first] = survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)
    [again] = survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)
    assert again.unchanged and again.batch_id == first.batch_id and again.rows_read == 0
    mapping = tmp_path / "nps_2026.mapping.yml"
    mapping.write_text(mapping.read_text(encoding="utf-8") + "list_separator: '|'\n", encoding="utf-8")
    [remapped] = survey_files.extract_load(cfg, "nps_2026", WINDOW, wh)  # same file, another mapping
    assert not remapped.unchanged and remapped.rows_read == first.rows_read
    assert wh.execute("select count(*) from raw_meta.load_batches").fetchone()[0] == 2


def test_xlsx_without_response_id_uses_a_stable_hash(tmp_path, wh):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Timestamp", "Почему вы перестали у нас покупать?", "Что для вас важно?", "NPS"])
    ws.append([dt.datetime(2026, 11, 1, 9, 30), "Дорого", "Цена, Скорость доставки", 6])
    ws.append([46000.25, "Переехал", None, 7.0])
    wb.save(tmp_path / "exit.xlsx")
    (tmp_path / "exit.mapping.yml").write_text(
        "submitted_at: timestamp\ncolumns:\n  почему вы перестали у нас покупать?: exit_reason\n"
        "  Что для вас важно?: values\n  nps: nps\n", encoding="utf-8")
    cfg = _cfg(tmp_path)
    survey_files.extract_load(cfg, "exit", WINDOW, wh)
    survey_files.extract_load(cfg, "exit", WINDOW, wh)
    rows = wh.execute("select form_id, response_id, submitted_at, answers from raw_surveys.responses "
                      "order by submitted_at").fetchall()
    assert len(rows) == 2 and all(len(r[1]) == 24 for r in rows)
    assert rows[0][2] == dt.datetime(2025, 12, 9, 6, 0, tzinfo=MSK)  # Excel serial 46000.25
    assert rows[1][0] == "exit" and rows[1][3] == {"exit_reason": "Дорого", "values": "Цена; Скорость доставки",
                                                   "values_list": ["Цена", "Скорость доставки"], "nps": 6}


def test_mapping_errors_are_clear(tmp_path, wh):
    (tmp_path / "m.mapping.yml").write_text("submitted_at: t\ncolumns:\n  q: purpse\n", encoding="utf-8")
    with pytest.raises(MappingError, match="unknown meaning 'purpse'"):
        load_mapping(tmp_path / "m.mapping.yml")
    _write(tmp_path, mapping=MAPPING.replace("Телефон", "Мобильный телефон"))
    with pytest.raises(MappingError, match="Мобильный телефон"):
        survey_files.extract_load(_cfg(tmp_path), "nps_2026", WINDOW, wh)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        survey_files.units(_cfg(tmp_path / "missing"))
    (tmp_path / "orphan.csv").write_text("a\n1\n")
    with pytest.raises(MappingError, match="no mapping file orphan.mapping.yml"):
        survey_files.extract_load(_cfg(tmp_path), "orphan", WINDOW, wh)


@pytest.mark.parametrize(("meaning", "value", "expected"), [
    ("nps", "10 — точно порекомендую", 10), ("nps", 0, 0), ("nps", "7,5", None), ("nps", "-1", None),
    ("satisfaction", "4 из 5", 4), ("satisfaction", 3.5, 3.5), ("interests", ["a", " b "], "a; b"),
    ("interests", "a, b", "a; b"),
    ("purpose", ["Для офиса"], "Для офиса"), ("exit_reason", True, "true"), ("values", "", None),
])
def test_answer_typing(meaning, value, expected):
    answers, _ = AnswerTyper().type_answers({meaning: value})
    assert answers[meaning] == expected
