"""``cw demo`` (``make demo``): the nightly pipeline, end to end, on the demo company.

1. the warehouse: ``warehouse_default`` if set, else the embedded PostgreSQL;
2. the demo company's data, generated once (deterministic by seed) into ``.demo/``;
3. the source emulators, started on loopback and described as Airflow connections;
4. ``airflow dags test customer_warehouse_nightly <day>`` with progress shown per task;
5. a summary a person can act on: where the marts are, how long each stage took, headline numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from . import local_airflow, warehouse
from .paths import state_dir


def _say(msg: str, t0: float | None = None) -> None:
    stamp = f"[{time.monotonic() - t0:6.1f}s] " if t0 is not None else ""
    print(f"{stamp}{msg}", flush=True)


def dataset_dirs(scale: str, seed: int) -> tuple[Path, Path]:
    root = state_dir(".demo") / f"{scale}-seed{seed}"
    return root / "data", root / "truth"


def generator_fingerprint() -> str:
    """A hash of the generator's code: data made by an older generator is made again."""
    import hashlib

    from . import demo

    digest = hashlib.sha1()
    for path in sorted(Path(demo.__file__).parent.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_dataset(scale: str, seed: int, today: str | None, regenerate: bool = False) -> tuple[Path, Path, dict]:
    data, truth = dataset_dirs(scale, seed)
    manifest = data / "manifest.json"
    stamp = data.parent / "generator.sha1"
    fingerprint = generator_fingerprint()
    current = stamp.exists() and stamp.read_text().strip() == fingerprint
    if today and manifest.exists() and json.loads(manifest.read_text(encoding="utf-8")).get("today") != today:
        current = False
    if regenerate or not manifest.exists() or not current:
        cmd = [sys.executable, "-m", "customer_warehouse.demo", "generate", "--out", str(data),
               "--truth", str(truth), "--seed", str(seed), "--scale", scale]
        if today:
            cmd += ["--today", today]
        log = state_dir(".artifacts") / "demo" / "generate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"generating the demo company ({scale}, seed {seed}) → {data}", flush=True)
        with log.open("w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise SystemExit(f"demo data generation failed; see {log}")
        stamp.write_text(fingerprint)
        return data, truth, {**json.loads(manifest.read_text(encoding="utf-8")), "_regenerated": True}
    return data, truth, json.loads(manifest.read_text(encoding="utf-8"))


def reset_embedded_warehouse(dsn) -> None:
    """New demo data means the embedded warehouse's old loads no longer match it: start clean."""
    with warehouse.connect(autocommit=True, dsn=dsn) as conn:
        schemas = [r[0] for r in conn.execute(
            "select nspname from pg_namespace where nspname like 'raw%' or nspname in "
            "('stg', 'int', 'snapshots', 'ref_data', 'marts', 'marts_build', 'marts_prev', 'ops')")]
        for name in schemas:
            conn.execute(f'drop schema "{name}" cascade')


STAGES = (("extract & load", lambda t: t.endswith("_units") or t.endswith("_load")),
          ("dbt build", lambda t: t == "dbt_build"),
          ("quality gate", lambda t: t == "quality_gate"),
          ("publish", lambda t: t == "publish"))


def stage_times(durations) -> list[tuple[str, float, int]]:
    out = []
    for name, pred in STAGES:
        rows = [d for d in durations if pred(d[0])]
        if rows:
            out.append((name, sum(r[3] for r in rows), len(rows)))
    return out


def headline(dsn) -> list[str]:
    """A few numbers leadership would ask for first, read from the published marts."""
    queries = [
        ("customers", "select count(*) from marts.customer_profitability", "{:,.0f}"),
        ("revenue, RUB", "select sum(revenue) from marts.customer_profitability", "{:,.2f}"),
        ("profit, RUB", "select sum(profit) from marts.customer_profitability", "{:,.2f}"),
        ("customers making 80% of profit", "select count(*) filter (where abc_class = 'A') "
         "from marts.customer_profitability", "{:,.0f}"),
        ("peak of the whale curve", "select max(cumulative_profit_share) from marts.whale_curve", "{:.0%}"),
        ("customers with a job assigned", "select avg((job_id <> 'unassigned')::int) from marts.customer_jobs",
         "{:.0%}"),
        ("customers flagged as churning", "select count(*) filter (where is_churned) from marts.customer_churn",
         "{:,.0f}"),
        ("retention budget, RUB", "select sum(retention_budget) from marts.customer_churn", "{:,.2f}"),
    ]
    lines = []
    with warehouse.connect(autocommit=True, dsn=dsn) as conn:
        for label, query, fmt in queries:
            try:
                value = conn.execute(query).fetchone()[0]
                lines.append(f"  {label:<34} {fmt.format(value) if value is not None else '—'}")
            except Exception as exc:  # a mart missing is worth showing, not crashing the summary
                lines.append(f"  {label:<34} n/a ({type(exc).__name__})")
    return lines


def run(day: str | None = None, scale: str = "demo", seed: int = 42, regenerate: bool = False) -> int:
    import logging
    import os

    t0 = time.monotonic()
    # this process only needs AIRFLOW_CONN_* variables; importing Airflow here would cost seconds
    # and flood the terminal with its logging (the tasks, in the child process, still use Airflow)
    os.environ.setdefault("CW_NO_AIRFLOW_LOOKUP", "1")
    logging.getLogger("customer_warehouse").setLevel(logging.WARNING)
    _say("customer warehouse demo: the nightly pipeline on the demo company «Зерно и Пар»")
    dsn = warehouse.resolve()
    where = "embedded PostgreSQL (.warehouse/)" if dsn.embedded else "warehouse_default connection"
    _say(f"warehouse: {dsn.redacted_uri}  [{where}]", t0)

    data, truth, manifest = ensure_dataset(scale, seed, day, regenerate)
    if manifest.get("_regenerated"):
        if dsn.embedded:
            reset_embedded_warehouse(dsn)
            _say("new demo data: the embedded warehouse was emptied so the first run loads its history", t0)
        else:
            _say("note: new demo data; warehouse_default keeps earlier loads (use the full_refresh param)", t0)
    day = day or manifest["today"]
    counts = manifest.get("counts", {})

    def total(prefix: str) -> int:
        return sum(v for k, v in counts.items() if k.startswith(prefix) and isinstance(v, int))

    _say(f"demo data: {data} — amoCRM {total('amocrm/'):,} records, Bitrix24 {total('bitrix24/'):,}, "
         f"Metrica {total('metrica/'):,} rows, files {total('files/'):,} rows, "
         f"forms {total('typeform/') + total('yandex_forms/'):,} responses", t0)

    from .emulators import stack as emulator_stack

    stack = emulator_stack.start(data)
    _say("emulators: " + ", ".join(f"{k} {v}" for k, v in stack.urls.items()), t0)
    try:
        env = local_airflow.airflow_env({**stack.connections(), "CW_TASK_RETRIES": "0"})
        env.pop("CW_NO_AIRFLOW_LOOKUP", None)
        _say("airflow: preparing the local metadata database", t0)
        local_airflow.ensure_metadata_db(env)
        log_path = state_dir(".artifacts") / "demo" / f"dags-test-{day}.log"
        _say(f"airflow dags test customer_warehouse_nightly {day}  (log: {log_path})", t0)
        rc = local_airflow.dags_test(day, env, log_path, lambda task: _say(f"  ▶ {task}", t0))
    finally:
        stack.stop()

    durations = local_airflow.task_durations(env)
    failed = [d for d in durations if d[2] in ("failed", "upstream_failed")]
    if rc != 0 or failed:
        _say("FAILED", t0)
        for task, idx, state, _ in failed:
            _say(f"  {task}{'' if idx < 0 else f'[{idx}]'}: {state}")
        _say(f"  what went wrong is at the end of {log_path}; fix it and run `make demo` again "
             f"(loads are idempotent, nothing is published from a failed run).")
        errors = [ln.rstrip() for ln in log_path.read_text(encoding="utf-8").splitlines()
                  if "Error" in ln or "error" in ln.split("]")[0]][-8:]
        for line in errors:
            print("    " + line[:300])
        return 1

    print()
    _say(f"done in {time.monotonic() - t0:.0f}s. Stage timings:")
    for name, seconds, n in stage_times(durations):
        print(f"  {name:<16} {seconds:8.1f}s  ({n} task{'s' if n != 1 else ''})")
    print("\nHeadline numbers (schema marts):")
    print("\n".join(headline(dsn)))
    print(f"\nThe marts:   psql '{dsn.redacted_uri}' -c 'select * from marts.customer_profitability limit 5'")
    print("Score them:  make evaluate      Dashboard: make dashboard      Data Docs: expectations/uncommitted/data_docs/index.html")
    return 0
