"""Streaming output helpers shared by the source writers.

Files are written line by line so no scale holds a whole source in memory. Where a source must be
ordered by time but customers are generated one after another (Metrica visits, survey answers),
:class:`TimeSorted` spills lines into weekly bucket files and sorts one bucket at a time on close.

Writers get their files from a :class:`Sinks`. In a worker process (``generate --workers N``) they
get a :class:`RecordingSinks` instead: the rendered lines of one chunk are recorded, sent to the
main process and replayed there in chunk order, so the bytes never depend on the worker count.
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
        self.write_line(dumps(obj))

    def write_line(self, line: str) -> None:
        self.fh.write(line)
        self.fh.write("\n")
        self.rows += 1

    def close(self) -> int:
        self.fh.close()
        return self.rows


class RuCsv:
    """A Russian-locale Excel CSV: cp1251, ``;``, CRLF line ends, every value as text."""

    def __init__(self, path: Path, header: list[str], *, encoding: str = "cp1251", delimiter: str = ";",
                 eol: str = "\r\n"):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh = path.open("w", encoding=encoding, newline="")
        self.writer = csv.writer(self.fh, delimiter=delimiter, lineterminator=eol)
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
        self.add_keyed(str(when)[:19], tiebreak, line)

    def add_keyed(self, moment: str, tiebreak: int, line: str) -> None:
        """``moment`` is ``YYYY-MM-DD HH:MM:SS``."""
        week = max((dt.date.fromisoformat(moment[:10]) - self.start).days // 7, 0)
        fh = self.buckets.get(week)
        if fh is None:
            fh = (self.tmp / f"{week:05d}").open("w", encoding="utf-8", newline="\n")
            self.buckets[week] = fh
        fh.write(f"{moment}\t{tiebreak:020d}\t{line}\n")
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


class Sinks:
    """Opens the real files; writers ask it for every file they write."""

    real = True

    def __init__(self):
        self.opened: dict[str, object] = {}

    def _keep(self, path: Path, sink):
        self.opened[str(path)] = sink
        return sink

    def jsonl(self, path: Path) -> Jsonl:
        return self._keep(path, Jsonl(path))

    def csv(self, path: Path, header: list[str], **kwargs) -> RuCsv:
        return self._keep(path, RuCsv(path, header, **kwargs))

    def time_sorted(self, path: Path, header: str | None, start: dt.date, **kwargs) -> TimeSorted:
        return self._keep(path, TimeSorted(path, header, start, **kwargs))

    def replay(self, recorded: dict[str, tuple[str, list]]) -> None:
        """Write what a :class:`RecordingSinks` recorded, in the order it was recorded."""
        for path, (kind, items) in recorded.items():
            sink = self.opened[path]
            if kind == "jsonl":
                for line in items:
                    sink.write_line(line)
            elif kind == "csv":
                for row in items:
                    sink.write(row)
            else:
                for moment, tiebreak, line in items:
                    sink.add_keyed(moment, tiebreak, line)


class _Recorder:
    def __init__(self, kind: str):
        self.kind, self.items = kind, []
        self.rows = 0

    def write(self, obj) -> None:
        self.items.append(dumps(obj) if self.kind == "jsonl" else list(obj))

    def add(self, when: dt.datetime, tiebreak: int, line: str) -> None:
        self.items.append((str(when)[:19], tiebreak, line))


class RecordingSinks(Sinks):
    """Records rendered lines instead of writing files (for worker processes)."""

    real = False

    def jsonl(self, path: Path):
        return self._keep(path, _Recorder("jsonl"))

    def csv(self, path: Path, header: list[str], **kwargs):
        return self._keep(path, _Recorder("csv"))

    def time_sorted(self, path: Path, header: str | None, start: dt.date, **kwargs):
        return self._keep(path, _Recorder("sorted"))

    def recorded(self) -> dict[str, tuple[str, list]]:
        return {path: (r.kind, r.items) for path, r in self.opened.items() if r.items}
