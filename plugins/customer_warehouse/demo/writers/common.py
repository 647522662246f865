"""Streaming output helpers shared by the source writers.

Files are written line by line so no scale holds a whole source in memory. Where a source must be
ordered by time but customers are generated one after another (Metrica visits, survey answers),
:class:`TimeSorted` spills lines into weekly bucket files and sorts one bucket at a time on close.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def ulid(unix_ms: int, n: int) -> str:
    """A ULID-length id (amoCRM event ids look like this): time-ordered prefix, unique suffix."""
    from ..ids import scramble63

    return f"{unix_ms:012x}{scramble63(n) & 0xFFFFF:05x}{n:09x}"


class Jsonl:
    """An append-only JSON Lines file that counts its rows."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh = path.open("w", encoding="utf-8", newline="\n")
        self.rows = 0

    def write(self, obj) -> None:
        self.fh.write(dumps(obj))
        self.fh.write("\n")
        self.rows += 1

    def close(self) -> int:
        self.fh.close()
        return self.rows


class RuCsv:
    """A Russian-locale Excel CSV: cp1251, ``;``, CRLF line ends, every value as text."""

    def __init__(self, path: Path, header: list[str]):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh = path.open("w", encoding="cp1251", newline="")
        self.writer = csv.writer(self.fh, delimiter=";", lineterminator="\r\n")
        self.writer.writerow(header)
        self.rows = 0

    def write(self, row: list) -> None:
        self.writer.writerow(["" if v is None else v for v in row])
        self.rows += 1

    def close(self) -> int:
        self.fh.close()
        return self.rows


def ru_money(kopecks: int) -> str:
    """``123456`` → ``1 234,56`` (space thousands separator, decimal comma)."""
    sign = "-" if kopecks < 0 else ""
    rub, kop = divmod(abs(kopecks), 100)
    return f"{sign}{rub:,}".replace(",", " ") + f",{kop:02d}"


def ru_date(when: dt.date) -> str:
    return when.strftime("%d.%m.%Y")


def ru_datetime(when: dt.datetime) -> str:
    return when.strftime("%d.%m.%Y %H:%M")


def money_text(kopecks: int) -> str:
    """``123456`` → ``1234.56`` (Bitrix24 and JSON reconciliation figures)."""
    rub, kop = divmod(kopecks, 100)
    return f"{rub}.{kop:02d}"


class TimeSorted:
    """Lines keyed by a timestamp, written in time order on :meth:`close`, one week in memory at a time."""

    def __init__(self, path: Path, header: str | None, start: dt.date, *, encoding: str = "utf-8",
                 eol: str = "\n"):
        self.path, self.encoding, self.eol = path, encoding, eol
        self.header = header
        self.start = start
        self.tmp = path.parent / f".{path.name}.buckets"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.buckets: dict[int, object] = {}
        self.rows = 0

    def add(self, when: dt.datetime, tiebreak: int, line: str) -> None:
        week = max((when.date() - self.start).days // 7, 0)
        fh = self.buckets.get(week)
        if fh is None:
            fh = (self.tmp / f"{week:05d}").open("w", encoding="utf-8", newline="\n")
            self.buckets[week] = fh
        fh.write(f"{str(when)[:19]}\t{tiebreak:020d}\t{line}\n")
        self.rows += 1

    def close(self) -> int:
        for fh in self.buckets.values():
            fh.close()
        with self.path.open("w", encoding=self.encoding, newline="") as out:
            if self.header is not None:
                out.write(self.header + self.eol)
            for week in sorted(self.buckets):
                bucket = self.tmp / f"{week:05d}"
                with bucket.open(encoding="utf-8", newline="\n") as fh:
                    lines = fh.read().split("\n")[:-1]
                lines.sort()
                for line in lines:
                    out.write(line.split("\t", 2)[2])
                    out.write(self.eol)
        shutil.rmtree(self.tmp)
        self.buckets = {}
        return self.rows
