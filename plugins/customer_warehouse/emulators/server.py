"""Run an ASGI app on a free loopback port in a background thread (tests, demo)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RequestCounter:
    """Outermost ASGI middleware: counts the API requests an emulator received (the control
    endpoints under ``/_emulator/`` excluded), whatever they were answered with. The count is
    updated on the event loop only, so reading it from another thread needs no lock."""

    def __init__(self, app):
        self.app = app
        self.count = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not scope["path"].startswith("/_emulator/"):
            self.count += 1
        return await self.app(scope, receive, send)


class BackgroundServer:
    def __init__(self, app, port: int | None = None):
        self.port = port or free_port()
        self.counter = RequestCounter(app)
        config = uvicorn.Config(self.counter, host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def requests(self) -> int:
        """API requests received so far."""
        return self.counter.count

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"emulator did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@contextlib.contextmanager
def running(app, port: int | None = None) -> Iterator[str]:
    """``with running(create_app(...)) as base_url:`` — the app served on 127.0.0.1."""
    srv = BackgroundServer(app, port).start()
    try:
        yield srv.url
    finally:
        srv.stop()
