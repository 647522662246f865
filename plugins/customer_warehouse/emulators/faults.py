"""Fault injection shared by all emulators.

A :class:`FaultPlan` holds rules; each rule matches a method and a path regex and fires for
its next ``times`` matching requests (optionally after skipping ``after`` of them):

* ``status`` with an optional JSON ``body`` and ``retry_after`` header (429/420/5xx/403),
* ``reset``: the connection is dropped without an answer,
* ``delay``: the answer is held back (for client time-outs),
* ``truncate``: only the first ``truncate`` bytes of the real body are sent.

Tests add rules through ``app.state.faults`` or over HTTP at ``POST /_emulator/faults``
(``GET`` lists what fired), so an emulator started by the demo can be broken from outside too.
"""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response


@dataclass
class Fault:
    path: str
    method: str = "*"
    status: int | None = None
    body: Any = None
    retry_after: float | None = None
    reset: bool = False
    delay: float = 0.0
    truncate: int | None = None
    times: int = 1
    after: int = 0
    fired: int = 0
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and re.search(self.path, path) is not None


@dataclass
class FaultPlan:
    rules: list[Fault] = field(default_factory=list)
    log: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **kwargs) -> Fault:
        fault = Fault(**kwargs)
        with self._lock:
            self.rules.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.log.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self.rules:
                if rule.fired < rule.times and rule.matches(method, path):
                    rule.seen += 1
                    if rule.seen <= rule.after:
                        continue
                    rule.fired += 1
                    self.log.append({"method": method, "path": path, "status": rule.status,
                                     "reset": rule.reset, "truncate": rule.truncate})
                    return rule
        return None


def install(app: FastAPI) -> FaultPlan:
    """Attach a fault plan to ``app`` (as ``app.state.faults``) and its control endpoints."""
    plan = FaultPlan()
    app.state.faults = plan

    @app.post("/_emulator/faults", include_in_schema=False)
    async def add_fault(request: Request):
        spec = await request.json()
        for item in spec if isinstance(spec, list) else [spec]:
            plan.add(**item)
        return {"rules": len(plan.rules)}

    @app.delete("/_emulator/faults", include_in_schema=False)
    async def clear_faults():
        plan.clear()
        return {"rules": 0}

    @app.get("/_emulator/faults", include_in_schema=False)
    async def fired():
        return {"fired": plan.log}

    app.add_middleware(FaultMiddleware, plan=plan)
    return plan


class FaultMiddleware:
    """Plain ASGI middleware: it must be able to end a response half-way, which HTTP-level
    middleware cannot (an exception there becomes a tidy 500)."""

    def __init__(self, app, plan: FaultPlan):
        self.app = app
        self.plan = plan

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            return await self.app(scope, receive, send)
        fault = self.plan.take(scope["method"], scope["path"])
        if fault is None:
            return await self.app(scope, receive, send)
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.reset:
            # promise a body, send none, and return: the server drops the connection
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1024")]})
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            return
        if fault.truncate is not None:
            messages: list[dict] = []

            async def capture(message):
                messages.append(message)

            await self.app(scope, receive, capture)
            start = messages[0]
            body = b"".join(m.get("body", b"") for m in messages[1:])
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body[: fault.truncate], "more_body": True})
            return
        if fault.status is None:
            return await self.app(scope, receive, send)
        headers = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.body is None:
            response = Response(status_code=fault.status, headers=headers)
        else:
            response = JSONResponse(fault.body, status_code=fault.status, headers=headers)
        await response(scope, receive, send)
