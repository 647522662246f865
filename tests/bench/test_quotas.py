"""The bench's quota switch and request counting, without running a bench."""

from __future__ import annotations

import json

import httpx
from customer_warehouse.emulators import amocrm, stack
from customer_warehouse.emulators.server import BackgroundServer

from bench import nightly
from bench.nightly import api_floor


def test_request_counter_counts_api_requests_but_not_control_endpoints(tmp_path):
    (tmp_path / "amocrm").mkdir()
    (tmp_path / "amocrm" / "users.jsonl").write_text('{"id": 1, "name": "a"}\n', encoding="utf-8")
    srv = BackgroundServer(amocrm.create_app(tmp_path, rate_limit=2, block_after=1000)).start()
    try:
        with httpx.Client(base_url=srv.url, headers={"Authorization": "Bearer demo-token"}) as http:
            statuses = [http.get("/api/v4/users").status_code for _ in range(5)]
            http.get("/_emulator/faults")
    finally:
        srv.stop()
    assert 429 in statuses  # rejected requests still count: they are requests the API received
    assert srv.requests == 5


def test_lifted_connections_switch_client_throttles_off(tmp_path):
    s = stack.Stack(tmp_path, {"history_start": "2025-01-01"})
    s.servers = {name: type("S", (), {"url": f"http://127.0.0.1:{i}"})() for i, name in
                 enumerate(("metrica", "amocrm", "bitrix24", "typeform", "yandex_forms"), 9000)}
    real = {k: json.loads(v)["extra"] for k, v in s.connections().items()}
    lifted = {k: json.loads(v)["extra"] for k, v in s.connections(lifted=True).items()}
    assert "requests_per_second" not in real["AIRFLOW_CONN_AMOCRM_DEFAULT"]
    assert lifted["AIRFLOW_CONN_AMOCRM_DEFAULT"]["requests_per_second"] == 0
    assert lifted["AIRFLOW_CONN_BITRIX24_DEFAULT"]["requests_per_second"] == 0
    assert lifted["AIRFLOW_CONN_BITRIX24_DEFAULT"]["burst"] == 0
    assert lifted["AIRFLOW_CONN_TYPEFORM_DEFAULT"]["min_interval_seconds"] == 0
    assert lifted["AIRFLOW_CONN_AMOCRM_DEFAULT"]["start_date"] == "2025-01-01"  # the rest is kept


def test_api_floor_is_requests_over_the_documented_rate():
    assert api_floor("amocrm", 700)["api_floor_seconds_at_documented_limits"] == 100.0
    assert api_floor("bitrix24", 40)["api_floor_seconds_at_documented_limits"] == 0.0  # inside the burst
    assert api_floor("bitrix24", 250)["api_floor_seconds_at_documented_limits"] == 100.0
    assert api_floor("yandex_forms", 5) == {"api_requests": 5, "api_floor_seconds_at_documented_limits": None,
                                            "api_floor_reason": "no documented request rate"}


def test_slow_stage_rate_keeps_its_decimals():
    # a stage that landed 3 rows in 7.5 s moved 0.4 rows/s, not 0
    assert nightly.rate(3, 7.5) == 0.4
    assert nightly.rate(1_000_000, 3.0) == 333_333
    run = {"stages": [{"name": "extract_load:typeform", "rows": 1, "seconds": 2.6}]}
    nightly.add_rates(run, raw_rows=0, mart_rows=0)
    assert run["stages"][0]["rows_per_second"] == 0.38
