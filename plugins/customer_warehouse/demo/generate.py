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
from pathlib import Path

from . import catalog as C
from .model import Period, simulate, simulate_anonymous
from .writers.amocrm import AmoWriter
from .writers.bitrix24 import B24Writer
from .writers.common import dumps
from .writers.files import FilesWriter
from .writers.metrica import MetricaWriter
from .writers.surveys import TYPEFORM_FORM, YANDEX_FORM, SurveyWriter
from .writers.truth import TruthWriter

#: customers per scale (anonymous site visitors come on top, ~3 per customer)
SCALES = {"tiny": 400, "demo": 3_000, "small": 20_000, "medium": 200_000, "large": 1_000_000}
CHUNK = 500
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


def generate(out: str | Path, truth: str | Path | None = None, *, seed: int = 42, scale: str = "demo",
             today: dt.date = dt.date(2026, 11, 20), holdout_days: int = HOLDOUT_DAYS,
             customers: int | None = None, progress: bool = True) -> dict:
    """Write the served folder ``out`` and the hidden ``truth`` folder; return the manifest."""
    out = Path(out).resolve()
    truth = Path(truth).resolve() if truth else default_truth_dir(out)
    if truth == out or out in truth.parents:
        raise ValueError(f"truth folder {truth} must not be inside the served folder {out}")
    n_customers = customers if customers is not None else SCALES[scale]
    period = Period(today - dt.timedelta(days=HISTORY_DAYS), today, holdout_days)
    _prepare(out, "manifest.json")
    _prepare(truth, "reconciliation.json")

    amo, b24 = AmoWriter(out, period), B24Writer(out, period)
    metrica, files, surveys = MetricaWriter(out, period), FilesWriter(out, period, seed), SurveyWriter(out, period)
    truth_writer = TruthWriter(truth, period)
    writers = (amo, b24, metrica, files, surveys, truth_writer)

    started = last_report = time.monotonic()
    n_anon = 0
    for chunk_start in range(0, n_customers, CHUNK):
        chunk = chunk_start // CHUNK
        rng = random.Random(f"zernoipar:{seed}:{chunk}")
        for index in range(chunk_start, min(chunk_start + CHUNK, n_customers)):
            customer = simulate(rng, index, period)
            for w in writers:
                w.customer(customer)
        anon_rng = random.Random(f"zernoipar-anon:{seed}:{chunk}")
        per_chunk = round(min(CHUNK, n_customers - chunk_start) * C.ANON_VISITORS_PER_CUSTOMER)
        for j in range(per_chunk):
            metrica.anonymous(simulate_anonymous(anon_rng, chunk * CHUNK * 4 + j, period))
        n_anon += per_chunk
        if progress and time.monotonic() - last_report > 2:
            last_report = time.monotonic()
            done = min(chunk_start + CHUNK, n_customers)
            print(f"demo: {done:,}/{n_customers:,} customers ({done / n_customers:.0%}), "
                  f"{last_report - started:.0f}s", file=sys.stderr, flush=True)

    counts: dict[str, int] = {}
    counts.update(amo.close())
    counts.update(b24.close())
    metrica_counts = metrica.close()
    counts.update(metrica_counts)
    counts.update(files.close(metrica.ad_clicks))
    counts.update(surveys.close())
    truth_counts = truth_writer.close({"seed": seed, "scale": scale, "today": today.isoformat()})
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
