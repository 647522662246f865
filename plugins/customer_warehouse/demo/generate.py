"""Generate the demo folder: stream customers chunk by chunk through every source writer.

Each chunk of customers has its own random generator seeded from ``(seed, chunk)``, and every id
is derived from a customer's index, so a chunk never depends on another one: the same seed,
scale and ``today`` give byte-identical files, and memory stays flat whatever the scale.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import sys
import time
from collections import deque
from pathlib import Path

from . import catalog as C
from .model import Period, simulate, simulate_anonymous
from .writers.amocrm import AmoWriter
from .writers.bitrix24 import B24Writer
from .writers.common import RecordingSinks, Sinks, dumps
from .writers.files import FilesWriter
from .writers.metrica import MetricaWriter
from .writers.surveys import TYPEFORM_FORM, YANDEX_FORM, SurveyWriter
from .writers.truth import TruthWriter

#: customers per scale (anonymous site visitors come on top, ~3 per customer)
SCALES = {"tiny": 400, "demo": 3_000, "small": 20_000, "medium": 200_000, "large": 1_000_000}
CHUNK = 500
ANON_SPACE = 16  # anonymous-visitor indices per customer slot (> ANON_VISITORS_PER_CUSTOMER)
HISTORY_DAYS = 730
HOLDOUT_DAYS = 180


def default_truth_dir(out: Path) -> Path:
    return out.resolve().parent / "truth"


def _prepare(path: Path, marker: str) -> None:
    """Empty a folder we wrote before; refuse to wipe anything else."""
    if path.exists() and any(path.iterdir()):
        if not (path / marker).exists():
            raise FileExistsError(f"{path} is not empty and was not written by the demo generator")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)


def _writers(out: Path, truth: Path, period: Period, seed: int, sinks: Sinks) -> tuple:
    return (AmoWriter(out, period, sinks), B24Writer(out, period, sinks), MetricaWriter(out, period, sinks),
            FilesWriter(out, period, seed, sinks), SurveyWriter(out, period, sinks), TruthWriter(truth, period, sinks))


def _run_chunk(chunk: int, seed: int, n_customers: int, period: Period, writers: tuple) -> int:
    """Simulate one chunk of customers (and its anonymous visitors) through the writers."""
    metrica = writers[2]
    chunk_start = chunk * CHUNK
    rng = random.Random(f"zernoipar:{seed}:{chunk}")
    for index in range(chunk_start, min(chunk_start + CHUNK, n_customers)):
        customer = simulate(rng, index, period)
        for w in writers:
            w.customer(customer)
    anon_rng = random.Random(f"zernoipar-anon:{seed}:{chunk}")
    n_anon = round(min(CHUNK, n_customers - chunk_start) * C.ANON_VISITORS_PER_CUSTOMER)
    for j in range(n_anon):
        metrica.anonymous(simulate_anonymous(anon_rng, chunk * CHUNK * ANON_SPACE + j, period))
    return n_anon


_JOB: dict = {}


def _init_worker(out: Path, truth: Path, period: Period, seed: int, n_customers: int) -> None:
    _JOB.update(out=out, truth=truth, period=period, seed=seed, n_customers=n_customers)


def _render_chunk(chunk: int) -> tuple:
    """In a worker: one chunk rendered to lines, plus the aggregates the main process sums."""
    sinks = RecordingSinks()
    writers = _writers(_JOB["out"], _JOB["truth"], _JOB["period"], _JOB["seed"], sinks)
    n_anon = _run_chunk(chunk, _JOB["seed"], _JOB["n_customers"], _JOB["period"], writers)
    metrica, truth = writers[2], writers[5]
    return (sinks.recorded(), dict(metrica.phrases), dict(metrica.ad_clicks), truth.revenue, truth.won,
            truth.n_customers, truth.n_keys, n_anon, truth.acquired)


def _chunks_in_workers(workers: int, n_chunks: int, initargs: tuple):
    """Chunk results in chunk order, at most ``2 × workers`` in flight (bounded memory)."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    with ctx.Pool(workers, initializer=_init_worker, initargs=initargs) as pool:
        pending: deque = deque()
        for chunk in range(n_chunks):
            pending.append(pool.apply_async(_render_chunk, (chunk,)))
            if len(pending) >= 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def generate(out: str | Path, truth: str | Path | None = None, *, seed: int = 42, scale: str = "demo",
             today: dt.date = dt.date(2026, 11, 20), holdout_days: int = HOLDOUT_DAYS,
             customers: int | None = None, progress: bool = True, workers: int = 1) -> dict:
    """Write the served folder ``out`` and the hidden ``truth`` folder; return the manifest.

    ``workers > 1`` renders chunks in that many processes; the files are byte-identical either way.
    """
    out = Path(out).resolve()
    truth = Path(truth).resolve() if truth else default_truth_dir(out)
    if truth == out or out in truth.parents:
        raise ValueError(f"truth folder {truth} must not be inside the served folder {out}")
    n_customers = customers if customers is not None else SCALES[scale]
    period = Period(today - dt.timedelta(days=HISTORY_DAYS), today, holdout_days)
    _prepare(out, "manifest.json")
    _prepare(truth, "reconciliation.json")

    sinks = Sinks()
    writers = _writers(out, truth, period, seed, sinks)
    amo, b24, metrica, files, surveys, truth_writer = writers
    n_chunks = -(-n_customers // CHUNK)
    started = last_report = time.monotonic()
    n_anon = 0

    def report(chunk: int) -> None:
        nonlocal last_report
        if progress and time.monotonic() - last_report > 2:
            last_report = time.monotonic()
            done = min((chunk + 1) * CHUNK, n_customers)
            print(f"demo: {done:,}/{n_customers:,} customers ({done / n_customers:.0%}), "
                  f"{last_report - started:.0f}s", file=sys.stderr, flush=True)

    if workers <= 1:
        for chunk in range(n_chunks):
            n_anon += _run_chunk(chunk, seed, n_customers, period, writers)
            report(chunk)
    else:
        results = _chunks_in_workers(workers, n_chunks, (out, truth, period, seed, n_customers))
        for chunk, (recorded, phrases, clicks, revenue, won, n_cust, n_keys, anon, acquired) in enumerate(results):
            sinks.replay(recorded)
            metrica.merge(phrases, clicks)
            truth_writer.merge(revenue, won, n_cust, n_keys, acquired)
            n_anon += anon
            report(chunk)

    counts: dict[str, int] = {}
    counts.update(amo.close())
    counts.update(b24.close())
    metrica_counts = metrica.close()
    counts.update(metrica_counts)
    counts.update(files.close(metrica.ad_clicks))
    counts.update(surveys.close())
    truth_counts = truth_writer.close({"seed": seed, "scale": scale, "today": today.isoformat()}, files.spend)
    manifest = {
        "seed": seed, "scale": scale, "today": today.isoformat(), "history_start": period.start.isoformat(),
        "timezone": C.TIMEZONE, "currency": C.CURRENCY, "company": C.COMPANY,
        "counters": [C.COUNTER_ID], "amocrm_account": C.AMOCRM_ACCOUNT, "bitrix24_portal": C.BITRIX24_PORTAL,
        "typeform_forms": [TYPEFORM_FORM], "yandex_forms": [YANDEX_FORM], "survey_files": ["nps"],
        "customers_simulated": n_customers, "anonymous_visitors": n_anon,
        "counts": dict(sorted(counts.items())),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if progress:
        print(f"demo: wrote {out} and {truth} ({truth_counts['truth/customers.csv']:,} customers) "
              f"in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    return manifest


__all__ = ["SCALES", "generate", "default_truth_dir", "dumps"]
