"""The shared fault injector every emulator uses: statuses, Retry-After, resets, truncation."""

import httpx
import pytest
from customer_warehouse.emulators import faults
from customer_warehouse.emulators.server import running
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse


def _app():
    app = FastAPI()
    plan = faults.install(app)

    @app.get("/data")
    def data():
        return PlainTextResponse("x" * 1000)

    return app, plan


def test_status_retry_after_then_recovers():
    app, plan = _app()
    plan.add(path="^/data$", status=429, retry_after=2, body={"code": 429}, times=2)
    with running(app) as url:
        r1, r2, r3 = (httpx.get(url + "/data") for _ in range(3))
    assert (r1.status_code, r1.headers["retry-after"], r1.json()) == (429, "2", {"code": 429})
    assert r2.status_code == 429 and r3.status_code == 200
    assert len(plan.log) == 2


def test_reset_and_truncate_are_seen_by_the_client():
    app, plan = _app()
    plan.add(path="^/data$", reset=True)
    plan.add(path="^/data$", truncate=10, after=0)
    with running(app) as url:
        with pytest.raises(httpx.TransportError):
            httpx.get(url + "/data")
        with pytest.raises(httpx.TransportError):  # body shorter than Content-Length
            httpx.get(url + "/data")
        assert httpx.get(url + "/data").text == "x" * 1000


def test_faults_can_be_added_over_http():
    app, plan = _app()
    with running(app) as url:
        httpx.post(url + "/_emulator/faults", json={"path": "/data", "status": 503, "times": 1})
        assert httpx.get(url + "/data").status_code == 503
        assert httpx.get(url + "/data").status_code == 200
        assert httpx.get(url + "/_emulator/faults").json()["fired"][0]["status"] == 503
