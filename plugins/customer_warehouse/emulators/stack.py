"""Start every source emulator on the demo dataset and describe them as Airflow connections.

Used by ``cw demo`` (and ``cw emulators``): the connections it returns are exactly what a real
deployment sets, only pointing at 127.0.0.1, so the pipeline cannot tell the difference.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .server import BackgroundServer

log = logging.getLogger(__name__)

DEMO_TOKEN = "demo-token"  # emulator-only credentials; real ones come from Airflow connections
DEMO_B24_SECRET = "demo-secret"

# A small counter's logs fit a year per request in the real API; the emulator's default of 31 days
# exercises splitting in tests, the demo should not wait on it.
DEMO_OPTIONS: dict[str, dict] = {"metrica": {"max_days_per_request": 366, "processing_seconds": 0.1}}

# ``python -m bench --api-quotas lifted``: the emulators without their quotas and processing
# delays (create_app options) and the clients without their self-throttles (connection extras), so
# a benchmark measures our pipeline, not the vendors' pacing. Emulators and benchmarks only: a real
# amoCRM account that goes over 7 requests/s is blocked, a Bitrix24 portal answers 503.
LIFTED_OPTIONS: dict[str, dict] = {
    "metrica": {"processing_seconds": 0.0},
    "amocrm": {"rate_limit": None, "request_log_limit": 10_000},
    "bitrix24": {"bucket_size": float("inf")},
    "yandex_forms": {"export_polls": 0},
}
LIFTED_EXTRAS: dict[str, dict] = {  # connection id → extra values that switch client pacing off
    "yandex_metrica_default": {"poll_interval": 0.05},
    "amocrm_default": {"requests_per_second": 0},
    "bitrix24_default": {"requests_per_second": 0, "burst": 0},
    "typeform_default": {"min_interval_seconds": 0},
    "yandex_forms_default": {"min_interval_seconds": 0, "poll_interval_seconds": 0.05},
}

EMULATORS = {  # source name → emulator module
    "metrica": "customer_warehouse.emulators.metrica",
    "amocrm": "customer_warehouse.emulators.amocrm",
    "bitrix24": "customer_warehouse.emulators.bitrix24",
    "typeform": "customer_warehouse.emulators.typeform",
    "yandex_forms": "customer_warehouse.emulators.yandex_forms",
}


@dataclass
class Stack:
    data_dir: Path
    manifest: dict
    servers: dict[str, BackgroundServer] = field(default_factory=dict)

    @property
    def urls(self) -> dict[str, str]:
        return {name: srv.url for name, srv in self.servers.items()}

    def stop(self) -> None:
        for srv in self.servers.values():
            srv.stop()

    def connections(self, lifted: bool = False) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables (JSON form) for every demo source; ``lifted`` adds the
        extras that turn the clients' self-throttles off (see ``LIFTED_EXTRAS``)."""
        m, urls, data = self.manifest, self.urls, self.data_dir
        start = m.get("history_start")
        mappings = str(data / "survey_mappings")
        conns: dict[str, dict] = {
            "crm_files_default": {"conn_type": "fs", "extra": {"path": str(data / "files" / "crm")}},
            "survey_files_default": {"conn_type": "fs", "extra": {"path": str(data / "files" / "surveys")}},
        }
        if "metrica" in urls:
            conns["yandex_metrica_default"] = {
                "conn_type": "http", "host": urls["metrica"], "password": DEMO_TOKEN,
                "extra": {"counter_ids": m.get("counters", []), "start_date": start, "poll_interval": 0.5},
            }
        if "amocrm" in urls:
            conns["amocrm_default"] = {
                "conn_type": "http", "host": urls["amocrm"], "password": DEMO_TOKEN,
                "extra": {"start_date": start},
            }
        if "bitrix24" in urls:
            conns["bitrix24_default"] = {
                "conn_type": "http", "host": f"{urls['bitrix24']}/rest/1/{DEMO_B24_SECRET}/",
                "password": DEMO_B24_SECRET, "extra": {"start_date": start},
            }
        if "typeform" in urls:
            conns["typeform_default"] = {
                "conn_type": "http", "host": urls["typeform"], "password": DEMO_TOKEN,
                "extra": {"forms": m.get("typeform_forms", []), "mapping_dir": mappings, "start_date": start},
            }
        if "yandex_forms" in urls:
            conns["yandex_forms_default"] = {
                "conn_type": "http", "host": urls["yandex_forms"], "password": DEMO_TOKEN,
                "extra": {"surveys": m.get("yandex_forms", []), "org_id": "demo-org",
                          "mapping_dir": mappings, "start_date": start},
            }
        if lifted:
            for conn_id, extra in LIFTED_EXTRAS.items():
                if conn_id in conns:
                    conns[conn_id]["extra"].update(extra)
        return {f"AIRFLOW_CONN_{k.upper()}": json.dumps(v, ensure_ascii=False) for k, v in conns.items()}


def start(data_dir: Path, only: list[str] | None = None) -> Stack:
    """Start the emulators whose data exists in ``data_dir``."""
    data_dir = Path(data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    stack = Stack(data_dir, manifest)
    for name, mod in EMULATORS.items():
        if only and name not in only:
            continue
        if not (data_dir / name).exists():
            log.info("emulator %s: no data in %s, not started", name, data_dir / name)
            continue
        # each emulator takes its notion of "today" from the manifest itself
        app = importlib.import_module(mod).create_app(data_dir, **DEMO_OPTIONS.get(name, {}))
        stack.servers[name] = BackgroundServer(app).start()
        log.info("emulator %s listening on %s", name, stack.servers[name].url)
    return stack
