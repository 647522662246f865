"""Source connectors. Each module exposes the same two functions:

``units(cfg) -> list[str]``
    What to map over: Metrica counters, CRM accounts, survey forms (``["default"]`` if one).
``extract_load(cfg, unit, window, conn) -> list[BatchResult]``
    Pull ``window`` (or the whole history on the first run / ``window.full``) from the source
    described by ``cfg`` and land it through :class:`~customer_warehouse.loading.RawBatch`.

Clients talk HTTP to ``cfg.base_url`` so tests and the demo can point them at the emulators.
"""

from __future__ import annotations

import datetime as dt
import importlib
from dataclasses import dataclass
from types import ModuleType

#: source name → module. The source name is also the key in connections.SOURCE_CONN_IDS.
SOURCE_MODULES: dict[str, str] = {
    "metrica": "customer_warehouse.sources.metrica",
    "amocrm": "customer_warehouse.sources.amocrm",
    "bitrix24": "customer_warehouse.sources.bitrix24",
    "typeform": "customer_warehouse.sources.typeform",
    "yandex_forms": "customer_warehouse.sources.yandex_forms",
    "crm_files": "customer_warehouse.sources.crm_files",
    "survey_files": "customer_warehouse.sources.survey_files",
}


@dataclass(frozen=True)
class Window:
    """The data interval of a run, as timezone-aware instants, plus the business time zone.

    ``full`` asks for the whole history (first run on an empty warehouse, or an explicit reload).
    """

    start: dt.datetime
    end: dt.datetime
    tz: str = "Europe/Moscow"
    full: bool = False

    def __post_init__(self):
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError(f"window ends before it starts: {self.start} > {self.end}")

    @property
    def business_day(self) -> dt.date:
        """The day the run loads: the window's start in the business time zone."""
        from zoneinfo import ZoneInfo

        return self.start.astimezone(ZoneInfo(self.tz)).date()

    @classmethod
    def for_day(cls, day: dt.date, tz: str = "Europe/Moscow", full: bool = False) -> Window:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
        start = dt.datetime.combine(day, dt.time(), zone)
        return cls(start, start + dt.timedelta(days=1), tz, full)


def module(source: str) -> ModuleType:
    try:
        return importlib.import_module(SOURCE_MODULES[source])
    except KeyError:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(SOURCE_MODULES)}") from None
