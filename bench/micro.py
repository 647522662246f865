"""Component benchmarks: our raw loader against ``psql \\copy`` and ``DataFrame.to_sql``, and the
cost of parsing the DAG file.

Loader comparisons use the Metrica visits TSV of the generated dataset, the widest raw feed.
*Ours* is :func:`customer_warehouse.sources.metrica.load.load_parts`, the code the nightly runs:
one RawBatch (delete the dates, COPY of each part — whole segments when PostgreSQL takes them as
they are, else line by line with quarantine —, the ledger row) — the whole load, not only its
COPY. *psql* copies the same file into a table of identical structure (same columns, defaults and
index, created ``like`` ours) with ``\\copy … (format text, header true)``: the floor for getting
those bytes into PostgreSQL; it fills only the file's columns, ours also the counter, the typed
date and the batch metadata. *to_sql* appends the same rows, read into a DataFrame beforehand,
to a table of that same structure with pandas' default settings. Every variant runs ``REPEATS``
times into an emptied table; the median counts.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from customer_warehouse.warehouse import WarehouseDSN

from .procs import say

REPEATS = 3
TO_SQL_ROWS = 20_000  # the key's sample: to_sql is slow by design
TO_SQL_ROWS_LARGE = 100_000  # also measured (up to the file's rows): our fixed cost per batch weighs less
DAG_PARSES = 5
COUNTER = 91234567


def _visits_file(data_dir: Path, work: Path, limit: int | None = None) -> Path:
    """The visits export as the Logs API serves it for the loader's default fields (the emulator
    cuts the generator's all-fields file the same way), written once, untimed."""
    from customer_warehouse.sources.metrica.settings import DEFAULT_VISIT_FIELDS

    found = sorted((data_dir / "metrica").glob("*/visits.tsv"))
    if not found:
        raise FileNotFoundError(f"no metrica/<counter>/visits.tsv in {data_dir}")
    out = work / f"visits-part{'' if limit is None else f'-{limit}'}.tsv"
    with found[0].open(encoding="utf-8", newline="\n") as f, out.open("w", encoding="utf-8", newline="\n") as w:
        header = f.readline().rstrip("\n").split("\t")
        keep = [header.index(name) for name in DEFAULT_VISIT_FIELDS]
        w.write("\t".join(DEFAULT_VISIT_FIELDS) + "\n")
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            values = line.rstrip("\n").split("\t")
            w.write("\t".join(values[k] for k in keep) + "\n")
    return out


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as f:
        return f.readline().rstrip("\n").split("\t")


def _date_range(path: Path, date_at: int) -> tuple[str, str]:
    first = last = None
    with path.open(encoding="utf-8", errors="replace") as f:
        next(f)
        for line in f:
            values = line.split("\t")
            if len(values) > date_at and len(values[date_at]) == 10:
                day = values[date_at]
                first = day if first is None or day < first else first
                last = day if last is None or day > last else last
    return first or "2000-01-01", last or "2000-01-01"


def _our_load(dsn: WarehouseDSN, path: Path, header: list[str], rows: int, first: str, last: str) -> float:
    import datetime as dt

    from customer_warehouse.sources.metrica.load import VISITS, load_parts
    from customer_warehouse.sources.metrica.logs_client import Part

    part = Part(request_id=1, number=0, path=path, header=header, rows=rows, size=path.stat().st_size)
    with psycopg.connect(dsn.uri) as conn, tempfile.TemporaryDirectory() as spool:
        started = time.perf_counter()
        result = load_parts(conn, VISITS, COUNTER, header, "Europe/Moscow", dt.date.fromisoformat(first),
                            dt.date.fromisoformat(last), [part], "full", Path(spool), {"bench": True})
        conn.commit()
        seconds = time.perf_counter() - started
    if result.rows_read != rows:
        raise RuntimeError(f"our loader read {result.rows_read} rows of {rows}")
    return seconds


def _psql_copy(dsn: WarehouseDSN, psql: Path, path: Path, columns: list[str]) -> float:
    cols = ", ".join(f'"{c}"' for c in columns)
    command = f"\\copy bench_micro.visits_psql ({cols}) from '{path}' with (format text, header true)"
    env = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
    started = time.perf_counter()
    subprocess.run([str(psql), dsn.uri, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", command], env=env,
                   check=True, capture_output=True)
    return time.perf_counter() - started


def _prepare_like_table(dsn: WarehouseDSN, name: str) -> None:
    """``bench_micro.<name>``: the structure of ``raw_metrica.visits`` (columns, defaults, index),
    its NOT NULLs dropped — the other loaders fill only the file's columns; ours adds the counter,
    date and batch metadata itself."""
    with psycopg.connect(dsn.uri, autocommit=True) as conn:
        conn.execute("create schema if not exists bench_micro")
        conn.execute(f"drop table if exists bench_micro.{name}")
        conn.execute(f"create table bench_micro.{name} (like raw_metrica.visits including all)")
        required = conn.execute(
            f"select attname from pg_attribute where attrelid = 'bench_micro.{name}'::regclass "
            "and attnum > 0 and attnotnull and not attisdropped").fetchall()
        for (column,) in required:
            conn.execute(f'alter table bench_micro.{name} alter column "{column}" drop not null')


def _truncate(dsn: WarehouseDSN, *tables: str) -> None:
    with psycopg.connect(dsn.uri, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"truncate {table}")
        conn.execute("checkpoint")  # each repeat starts from the same clean state


_PSQL: list[Path] = []  # the psql loader_vs_psql used, for the floor beside to_sql


def loader_vs_psql(dsn: WarehouseDSN, psql: Path, data_dir: Path, work: Path) -> dict[str, Any]:
    from customer_warehouse.sources.metrica.tsv import field_to_column

    _PSQL[:] = [psql]
    path = _visits_file(data_dir, work)
    header = _header(path)
    rows = sum(1 for _ in path.open("rb")) - 1
    first, last = _date_range(path, header.index("ym:s:date"))
    say(f"loader vs psql \\copy: {rows:,} visits rows, {path.stat().st_size / 1e6:.0f} MB, {REPEATS} repeats each")
    ours, theirs = [], []
    _our_load(dsn, path, header, rows, first, last)  # creates raw_metrica.visits, warms the cache
    _prepare_like_table(dsn, "visits_psql")
    columns = [field_to_column(f) for f in header]
    for _ in range(REPEATS):
        _truncate(dsn, "raw_metrica.visits")
        ours.append(_our_load(dsn, path, header, rows, first, last))
        _truncate(dsn, "bench_micro.visits_psql")
        theirs.append(_psql_copy(dsn, psql, path, columns))
    ours_s, psql_s = statistics.median(ours), statistics.median(theirs)
    say(f"  ours {ours_s:.2f}s vs psql \\copy {psql_s:.2f}s → ratio {ours_s / psql_s:.2f}")
    return {"rows": rows, "bytes": path.stat().st_size, "ours_seconds": [round(s, 3) for s in ours],
            "psql_seconds": [round(s, 3) for s in theirs], "ours_median": round(ours_s, 3),
            "psql_median": round(psql_s, 3), "ours_rows_per_second": round(rows / ours_s),
            "psql_rows_per_second": round(rows / psql_s), "ratio": round(ours_s / psql_s, 3), "psql": str(psql)}


def loader_vs_to_sql(dsn: WarehouseDSN, data_dir: Path, work: Path) -> dict[str, Any]:
    """pandas ``DataFrame.to_sql`` against our loader on the same rows, at ``TO_SQL_ROWS`` (the
    key) and at up to ``TO_SQL_ROWS_LARGE`` (reported beside it)."""
    result = _to_sql_at(dsn, data_dir, work, TO_SQL_ROWS)
    total = sum(1 for _ in _visits_file(data_dir, work).open("rb")) - 1
    larger = min(TO_SQL_ROWS_LARGE, total)
    if larger > TO_SQL_ROWS:
        result["larger"] = _to_sql_at(dsn, data_dir, work, larger)
    return result


def _to_sql_at(dsn: WarehouseDSN, data_dir: Path, work: Path, limit: int) -> dict[str, Any]:
    """What a pandas user gets by default: ``frame.to_sql(name, engine, if_exists="append",
    index=False)`` (``method=None``, no ``chunksize``; SQLAlchemy 2 batches the INSERTs with
    insertmanyvalues), into a table of the same structure as ours (``_prepare_like_table``: same
    columns, defaults and index), which it appends to. The frame is read before the clock starts,
    all columns as text (the raw layer keeps values as text); our loader's time includes reading
    the part file, as in production."""
    import pandas as pd
    import sqlalchemy
    from customer_warehouse.sources.metrica.tsv import field_to_column

    sample = _visits_file(data_dir, work, limit)
    header = _header(sample)
    rows = sum(1 for _ in sample.open("rb")) - 1
    first, last = _date_range(sample, header.index("ym:s:date"))
    say(f"loader vs pandas to_sql: {rows:,} visits rows")
    frame = pd.read_csv(sample, sep="\t", dtype=str, keep_default_na=False, quoting=3)
    frame.columns = [field_to_column(c) for c in frame.columns]
    if len(frame) != rows:
        raise RuntimeError(f"pandas read {len(frame)} rows of {rows}")
    if not _table_exists(dsn, "raw_metrica.visits"):
        _our_load(dsn, sample, header, rows, first, last)  # creates the table whose shape is copied
    _prepare_like_table(dsn, "visits_to_sql")
    engine = sqlalchemy.create_engine(dsn.sqlalchemy_url)
    theirs, ours, floor = [], [], []
    if _PSQL:
        _prepare_like_table(dsn, "visits_psql")
    for _ in range(REPEATS):
        _truncate(dsn, "bench_micro.visits_to_sql")
        started = time.perf_counter()
        frame.to_sql("visits_to_sql", engine, schema="bench_micro", if_exists="append", index=False)
        theirs.append(time.perf_counter() - started)
        _truncate(dsn, "raw_metrica.visits")
        ours.append(_our_load(dsn, sample, header, rows, first, last))
        if _PSQL:  # not part of the key: how far any loader could get, psql \copy being the floor
            _truncate(dsn, "bench_micro.visits_psql")
            floor.append(_psql_copy(dsn, _PSQL[0], sample, [field_to_column(c) for c in header]))
    with engine.connect() as conn:
        landed = conn.exec_driver_sql("select count(*) from bench_micro.visits_to_sql").scalar()
    engine.dispose()
    if landed != rows:
        raise RuntimeError(f"to_sql landed {landed} rows of {rows}")
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    say(f"  to_sql {theirs_s:.2f}s vs ours {ours_s:.3f}s → speed-up {theirs_s / ours_s:.1f}× "
        f"({rows / theirs_s:,.0f} vs {rows / ours_s:,.0f} rows/s)")
    extra: dict[str, Any] = {}
    if floor:
        floor_s = statistics.median(floor)
        say(f"  psql \\copy of the same rows {floor_s:.3f}s: to_sql / psql = {theirs_s / floor_s:.1f}×")
        extra = {"psql_seconds": [round(s, 4) for s in floor], "psql_median": round(floor_s, 4),
                 "to_sql_vs_psql": round(theirs_s / floor_s, 2)}
    return {"rows": rows, "to_sql_seconds": [round(s, 3) for s in theirs],
            "ours_seconds": [round(s, 4) for s in ours], **extra,
            "to_sql_median": round(theirs_s, 3), "ours_median": round(ours_s, 4),
            "speedup": round(theirs_s / ours_s, 2),
            "method": "DataFrame.to_sql(if_exists='append', index=False), defaults otherwise (method=None)",
            "target": "bench_micro.visits_to_sql: like raw_metrica.visits including all, NOT NULLs dropped",
            "driver": "postgresql+psycopg (SQLAlchemy " + sqlalchemy.__version__ + ")"}


def _table_exists(dsn: WarehouseDSN, name: str) -> bool:
    with psycopg.connect(dsn.uri, autocommit=True) as conn:
        return conn.execute("select to_regclass(%s)", (name,)).fetchone()[0] is not None


_PARSE = r"""
import json, sys, time
t0 = time.perf_counter()
import airflow, airflow.sdk  # what the dag processor already has loaded when it parses a file
from airflow.dag_processing.dagbag import DagBag
cold = time.perf_counter() - t0
t1 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
parse = time.perf_counter() - t1
print(json.dumps({"cold_import": cold, "parse": parse, "dags": len(bag.dags), "errors": len(bag.import_errors)}))
"""


def dag_parse(dag_file: Path, env: dict[str, str]) -> dict[str, Any]:
    """Parse the DAG file in fresh processes whose Airflow is already imported (as the dag
    processor's parsing child is); the import itself is reported apart as the cold start."""
    runs = []
    for _ in range(DAG_PARSES):
        out = subprocess.run([sys.executable, "-c", _PARSE, str(dag_file)], env=env, capture_output=True,
                             text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if any(r["errors"] or not r["dags"] for r in runs):
        raise RuntimeError(f"the DAG file did not parse cleanly: {runs[-1]}")
    parse = statistics.median(r["parse"] for r in runs)
    cold = statistics.median(r["cold_import"] for r in runs)
    say(f"DAG parse: {parse:.3f}s median of {len(runs)} (cold Airflow import {cold:.2f}s)")
    return {"parse_seconds": [round(r["parse"], 4) for r in runs], "median": round(parse, 4),
            "cold_import_seconds": [round(r["cold_import"], 3) for r in runs], "cold_import_median": round(cold, 3)}
