"""A local Airflow for ``cw demo``: a home folder under ``.airflow/``, SQLite metadata, and
``airflow dags test`` run as a child process whose progress is shown line by line.

Production runs the same DAG under the scheduler (docker-compose.yml); nothing here is used there.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .paths import project_root, state_dir

DAG_ID = "customer_warehouse_nightly"
_TASK_RE = re.compile(r"\[DAG TEST\] running task <TaskInstance: [\w.]+?\.(\w+)(?: manual__\S+)? (?:map_index=(\d+) )?")


def airflow_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    home = state_dir(".airflow")
    (home / "plugins").mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project_root() / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
    })
    env.update(extra or {})
    return env


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def ensure_metadata_db(env: dict[str, str]) -> None:
    """Create or upgrade the local metadata database (a no-op when it is current)."""
    proc = subprocess.run([_airflow_bin(), "db", "migrate"], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def dags_test(day: str, env: dict[str, str], log_path: Path, on_task: Callable[[str], None]) -> int:
    """Run the DAG once for ``day``; every task start is reported through ``on_task``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen([_airflow_bin(), "dags", "test", DAG_ID, day], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            match = _TASK_RE.search(line)
            if match:
                task, idx = match.groups()
                on_task(task if idx is None else f"{task}[{idx}]")
        return proc.wait()


def task_durations(env: dict[str, str]) -> list[tuple[str, int, str, float]]:
    """(task_id, map_index, state, seconds) of the latest run, from the metadata DB."""
    db = Path(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    with sqlite3.connect(db) as conn:
        run = conn.execute("select run_id from dag_run where dag_id = ? order by id desc limit 1", (DAG_ID,)).fetchone()
        if not run:
            return []
        rows = conn.execute(
            "select task_id, map_index, state, (julianday(end_date) - julianday(start_date)) * 86400.0 "
            "from task_instance where dag_id = ? and run_id = ? order by start_date",
            (DAG_ID, run[0]),
        ).fetchall()
    return [(t, m, s or "", float(d or 0.0)) for t, m, s, d in rows]
