"""The generator's promises: deterministic bytes, no truth and no holdout in the served folder."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from customer_warehouse.demo.generate import generate
from customer_warehouse.demo.ids import unix

TODAY = dt.date(2026, 11, 20)  # the conftest demo's today
TODAY_UNIX = unix(dt.datetime.combine(TODAY, dt.time()))
TODAY_ISO = TODAY.isoformat()


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _jsonl(path: Path):
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def test_same_seed_scale_and_today_give_the_same_bytes(tmp_path):
    """One run in this process, one through the CLI in another process with another hash seed."""
    a = generate(tmp_path / "a" / "served", seed=3, scale="tiny", today=TODAY, customers=60, progress=False)
    subprocess.run([sys.executable, "-m", "customer_warehouse.demo", "generate", "--out", str(tmp_path / "b" / "served"),
                    "--seed", "3", "--scale", "tiny", "--today", TODAY.isoformat(), "--customers", "60", "--quiet"],
                   check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    b = json.loads((tmp_path / "b" / "served" / "manifest.json").read_text(encoding="utf-8"))
    assert a == b
    for part in ("served", "truth"):
        first, second = _hashes(tmp_path / "a" / part), _hashes(tmp_path / "b" / part)
        assert first and first == second
    generate(tmp_path / "c" / "served", seed=4, scale="tiny", today=TODAY, customers=60, progress=False)
    other = _hashes(tmp_path / "c" / "served")
    assert other["amocrm/leads.jsonl"] != _hashes(tmp_path / "a" / "served")["amocrm/leads.jsonl"]


def test_worker_processes_give_the_same_bytes_and_ids_stay_unique_across_chunks(tmp_path, monkeypatch):
    import customer_warehouse.demo.generate as gen

    monkeypatch.setattr(gen, "CHUNK", 25)  # several chunks from few customers
    generate(tmp_path / "one" / "served", seed=5, today=TODAY, customers=70, progress=False)
    generate(tmp_path / "two" / "served", seed=5, today=TODAY, customers=70, progress=False, workers=2)
    for part in ("served", "truth"):
        assert _hashes(tmp_path / "one" / part) == _hashes(tmp_path / "two" / part)
    lines = next((tmp_path / "one" / "served" / "metrica").iterdir()).joinpath("visits.tsv").read_text(
        encoding="utf-8").splitlines()[1:]
    visit_ids = [line.split("\t")[0] for line in lines]
    assert len(set(visit_ids)) == len(visit_ids)
    first_visit = {}
    for line in lines:
        fields = line.split("\t")
        first_visit.setdefault(fields[2], fields[5])
    assert all(flag == "1" for flag in first_visit.values())  # a ClientID is new on its first visit only


def test_chunks_are_independent_so_a_smaller_run_is_a_prefix(tmp_path, demo):
    """Customers are streamed in chunks with their own generators: fewer customers, same first ones."""
    generate(tmp_path / "served", seed=7, scale="tiny", today=TODAY, customers=40, progress=False)
    small = (tmp_path / "served" / "amocrm" / "leads.jsonl").read_text(encoding="utf-8")
    full = (demo.served / "amocrm" / "leads.jsonl").read_text(encoding="utf-8")
    assert small and full.startswith(small)


def test_truth_is_beside_the_served_folder_and_never_inside_it(demo, tmp_path):
    assert demo.truth.parent == demo.served.parent
    assert {"customers.csv", "keys.csv", "reconciliation.json"} <= {p.name for p in demo.truth.iterdir()}
    for path in demo.served.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            for secret in (b"true_job", b"churned_in_holdout", b"churn_reason", b"true_cost_to_serve"):
                assert secret not in text, f"{secret!r} leaked into {path}"
    with pytest.raises(ValueError):
        generate(tmp_path / "x", tmp_path / "x" / "truth", customers=5, progress=False)


def test_refuses_to_wipe_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate(tmp_path / "served", customers=5, progress=False)
    assert (tmp_path / "served" / "precious.txt").exists()


def _amo_times(record: dict, name: str):
    for key in ("created_at", "updated_at", "closed_at"):
        if record.get(key) is not None:
            yield key, record[key]
    if name == "tasks" and record["is_completed"]:
        yield "complete_till", record["complete_till"]  # an open task's deadline is planned work


def test_no_crm_or_web_record_is_dated_on_or_after_today(demo):
    amo = demo.served / "amocrm"
    for name in ("leads", "deleted_leads", "contacts", "companies", "events", "tasks", "notes_leads",
                 "notes_contacts"):
        for record in _jsonl(amo / f"{name}.jsonl"):
            for key, value in _amo_times(record, name):
                assert value < TODAY_UNIX, (name, record["id"], key)
    b24 = demo.served / "bitrix24"
    for name, keys in (("deals", ("DATE_CREATE", "DATE_MODIFY", "BEGINDATE", "CLOSEDATE")),
                       ("contacts", ("DATE_CREATE", "DATE_MODIFY")), ("companies", ("DATE_CREATE", "DATE_MODIFY")),
                       ("activities", ("CREATED", "START_TIME"))):
        for record in _jsonl(b24 / f"{name}.jsonl"):
            for key in keys:
                assert record[key][:10] < TODAY_ISO, (name, record["ID"], key)
    visits = (demo.served / "metrica").rglob("visits.tsv")
    for path in visits:
        lines = path.read_text(encoding="utf-8").splitlines()
        dates = [line.split("\t")[4] for line in lines[1:]]
        assert dates == sorted(dates) and dates[-1] < TODAY_ISO
    for line in (demo.served / "files" / "crm" / "orders.csv").read_text(encoding="cp1251").splitlines()[1:]:
        day, month, year = line.split(";")[2][:10].split(".")
        assert f"{year}-{month}-{day}" < TODAY_ISO


def test_the_holdout_exists_only_in_the_truth(demo):
    with (demo.truth / "customers.csv").open(encoding="utf-8", newline="") as fh:
        truth = list(csv.DictReader(fh))
    assert sum(int(r["holdout_purchases"]) for r in truth) > 0
    assert 0.2 < sum(int(r["churned_in_holdout"]) for r in truth) / len(truth) < 0.85
    # customers with holdout purchases are visible today (served) but their holdout deals are not won yet
    leads = list(_jsonl(demo.served / "amocrm" / "leads.jsonl"))
    open_leads = [lead for lead in leads if lead["closed_at"] is None]
    assert open_leads and all(lead["status_id"] not in (142, 143) for lead in open_leads)


def test_manifest_counts_match_the_files(demo):
    m = demo.manifest
    assert json.loads((demo.served / "manifest.json").read_text(encoding="utf-8")) == m
    assert m["today"] == TODAY_ISO and m["timezone"] == "Europe/Moscow"
    for rel, count in m["counts"].items():
        if rel.startswith("truth/") or rel.endswith("counter.json"):
            continue
        path = demo.served / rel
        lines = path.read_bytes().count(b"\n")
        header = 1 if rel.endswith((".tsv", ".csv")) else 0
        assert lines - header == count, rel
