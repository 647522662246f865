"""Running a stage as a child process and measuring it: wall time, CPU time, peak RSS.

``os.wait4`` returns the child's own resource usage, which on Linux includes the descendants it
waited for (dbt and psql helpers), so each stage's peak memory is its own and not the maximum over
every child the bench ever started (what ``getrusage(RUSAGE_CHILDREN)`` would give).

One catch: Linux starts a child's ``ru_maxrss`` at the high-water mark of the memory it had before
``exec`` — the forking parent's. The bench process holds the emulators' indexes (a gigabyte at
small), so a stage forked from it would report at least that. Stages are therefore started by a
tiny launcher (``python -S``, ~10 MB) that forks the stage and reports ``wait4`` for it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEARTBEAT_SECONDS = 30.0
_T0 = time.monotonic()


def say(message: str) -> None:
    """Progress on stderr, stamped with the bench's elapsed time."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Measured:
    name: str
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    returncode: int
    log: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": round(self.seconds, 3), "cpu_seconds": round(self.cpu_seconds, 3),
                "peak_rss_mb": round(self.peak_rss_mb, 1), "ok": self.ok, "log": self.log, **self.extra}


_LAUNCHER = (
    "import json, os, subprocess, sys\n"
    "p = subprocess.Popen(sys.argv[2:])\n"
    "_, status, ru = os.wait4(p.pid, 0)\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump({'cpu': ru.ru_utime + ru.ru_stime, 'maxrss_kb': ru.ru_maxrss}, f)\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_measured(name: str, argv: list[str], env: dict[str, str], log_path: Path) -> Measured:
    """Run ``argv`` to the end with its output in ``log_path``; report progress while it runs."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    usage_file = log_path.with_suffix(".rusage.json")
    usage_file.unlink(missing_ok=True)
    with log_path.open("w", encoding="utf-8") as log:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(usage_file), *argv], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        next_beat = started + HEARTBEAT_SECONDS
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() >= next_beat:
                say(f"  … {name} still running ({time.monotonic() - started:.0f}s)")
                next_beat += HEARTBEAT_SECONDS
            time.sleep(0.05)
        seconds = time.monotonic() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        stage = json.loads(usage_file.read_text(encoding="utf-8"))
        cpu, peak_mb = stage["cpu"], stage["maxrss_kb"] / 1024  # ru_maxrss is in kilobytes on Linux
    except (OSError, ValueError, KeyError):  # the launcher itself died: its own figures are all there is
        cpu, peak_mb = usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024
    return Measured(name, seconds, cpu, peak_mb, proc.returncode, str(log_path))


def tail(path: str | Path, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
