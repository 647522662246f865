"""What the numbers were measured on: CPU, cores, memory, load, PostgreSQL, Python, packages."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("apache-airflow", "astronomer-cosmos", "dbt-core", "dbt-postgres", "great_expectations", "pandas",
            "SQLAlchemy", "psycopg", "pgserver", "httpx", "uvicorn", "fastapi", "scipy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe(postgres_version: str, pg_settings: dict[str, str]) -> dict[str, Any]:
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "postgresql": postgres_version,
        "postgresql_settings": pg_settings,
        "packages": {name: _version(name) for name in PACKAGES},
    }


def commit() -> str | None:
    """The checkout's commit (``git describe --always --dirty``): which code a result measured."""
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None
