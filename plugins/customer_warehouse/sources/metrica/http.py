"""HTTP to the Metrica APIs: OAuth header, retries, and errors that say what to do.

One policy for the Logs API and the Reporting API, per the documented contract:

* 429 and 420 (quota) wait for ``Retry-After`` when given, else back off exponentially;
* 500, 502, 503 and 504 and transport errors (resets, time-outs) back off exponentially;
* 401 and 403 fail at once: retrying a bad token only burns the daily quota;
* anything else (400 ``invalid_parameter``, 404) fails at once with Metrica's own message.

Every wait is bounded: at most ``retries`` retries per call, no single wait above ``max_sleep``.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

DEFAULT_HOST = "https://api-metrika.yandex.net"
QUOTA_STATUSES = (420, 429)
RETRY_STATUSES = (500, 502, 503, 504)


class MetricaError(RuntimeError):
    """A Metrica call failed; the message names the counter and the cause."""


class MetricaAuthError(MetricaError):
    """401/403: the token is missing, wrong, lacks ``metrika:read`` or cannot see the counter."""


class MetricaAPIError(MetricaError):
    """Metrica refused the call (400, 404, …) or kept failing after every retry."""

    def __init__(self, message: str, status: int | None = None, error_types: tuple[str, ...] = ()):
        super().__init__(message)
        self.status = status
        self.error_types = error_types


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 8
    backoff: float = 1.0
    max_sleep: float = 120.0

    def delay(self, attempt: int) -> float:
        return min(self.max_sleep, self.backoff * 2 ** attempt)


def error_text(response: httpx.Response) -> tuple[str, tuple[str, ...]]:
    """Metrica's ``{"errors": [{"error_type", "message", "location"}], "message"}`` as text."""
    try:
        body = response.json()
    except ValueError:
        return (response.text[:300] or response.reason_phrase), ()
    if not isinstance(body, dict):
        return str(body)[:300], ()
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    types = tuple(str(e.get("error_type", "")) for e in errors)
    parts = [
        f"{e.get('error_type', 'error')}: {e.get('message', '')}" + (f" ({e['location']})" if e.get("location") else "")
        for e in errors
    ]
    return ("; ".join(parts) or str(body.get("message") or body)[:300]), types


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds: a number (fractions allowed) or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class MetricaHTTP:
    """An ``httpx.Client`` bound to one counter, with the retry policy above."""

    def __init__(self, base_url: str, token: str | None, counter_id: int | str, *,
                 policy: RetryPolicy | None = None, timeout: float = 120.0, conn_id: str = ""):
        if not token:
            raise MetricaAuthError(
                f"Metrica counter {counter_id}: no OAuth token; put it in the password of connection "
                f"{conn_id or 'yandex_metrica_default'}"
            )
        self.counter_id = counter_id
        self.conn_id = conn_id or "yandex_metrica_default"
        self.policy = policy or RetryPolicy()
        # gzip transfer is reported broken for Logs API downloads: ask for the plain body
        self.client = httpx.Client(
            base_url=(base_url or DEFAULT_HOST).rstrip("/"),
            headers={"Authorization": f"OAuth {token}", "Accept-Encoding": "identity"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)),
        )
        self.calls = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> MetricaHTTP:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one JSON call -------------------------------------------------------------------------
    def json(self, method: str, path: str, params: dict[str, Any] | None = None) -> Any:
        """Call and return the JSON body, retrying as the policy says."""
        for attempt in self._attempts(method, path):
            try:
                response = self.client.request(method, path, params=params)
            except httpx.TransportError as exc:
                attempt.transport_failed(exc)
                continue
            if attempt.accept(response):
                return response.json()
        raise AssertionError("unreachable")  # _attempts raises when retries run out

    @contextlib.contextmanager
    def stream(self, path: str) -> Iterator[httpx.Response]:
        """A streamed GET that has passed the status checks (the body is not read yet).

        Errors while reading the body are the caller's to handle (a part is re-downloaded whole).
        """
        for attempt in self._attempts("GET", path):
            try:
                cm = self.client.stream("GET", path)
                response = cm.__enter__()
            except httpx.TransportError as exc:
                attempt.transport_failed(exc)
                continue
            try:
                if not attempt.accept(response, read_body=True):
                    continue
                yield response
                return
            finally:
                cm.__exit__(None, None, None)
        raise AssertionError("unreachable")

    def _attempts(self, method: str, path: str) -> Iterator[_Attempt]:
        failures = 0
        while True:
            self.calls += 1
            attempt = _Attempt(self, method, path, failures)
            yield attempt
            if attempt.wait is None:
                return
            failures += 1
            if failures > self.policy.retries:
                raise MetricaAPIError(
                    f"Metrica counter {self.counter_id}: {method} {path} still failing after "
                    f"{self.policy.retries} retries: {attempt.reason}", attempt.status)
            log.warning("Metrica counter %s: %s %s: %s; retry %d/%d in %.1fs", self.counter_id, method, path,
                        attempt.reason, failures, self.policy.retries, attempt.wait)
            time.sleep(attempt.wait)


class _Attempt:
    """One try of one call: decides whether to return, retry after a wait, or fail."""

    def __init__(self, http: MetricaHTTP, method: str, path: str, failures: int):
        self.http, self.method, self.path, self.failures = http, method, path, failures
        self.wait: float | None = None
        self.reason = ""
        self.status: int | None = None

    def transport_failed(self, exc: Exception) -> None:
        self.reason = f"{type(exc).__name__}: {exc}"
        self.wait = self.http.policy.delay(self.failures)

    def accept(self, response: httpx.Response, read_body: bool = False) -> bool:
        """True when the response is a success; otherwise sets ``wait`` or raises."""
        self.status = response.status_code
        if response.status_code < 400:
            return True
        if read_body:
            response.read()
        message, types = error_text(response)
        policy = self.http.policy
        counter = self.http.counter_id
        if response.status_code in (401, 403):
            raise MetricaAuthError(
                f"Metrica counter {counter}: {response.status_code} {message}. Check the OAuth token in "
                f"connection {self.http.conn_id} (password): it must be valid, have the metrika:read scope, "
                f"and its Yandex user must have access to counter {counter}."
            )
        if response.status_code in QUOTA_STATUSES:
            after = retry_after(response)
            self.wait = min(policy.max_sleep, after) if after is not None else policy.delay(self.failures)
            self.reason = f"quota ({response.status_code} {message})"
            return False
        if response.status_code in RETRY_STATUSES:
            self.wait = policy.delay(self.failures)
            self.reason = f"{response.status_code} {message}"
            return False
        raise MetricaAPIError(
            f"Metrica counter {counter}: {self.method} {self.path} answered {response.status_code}: {message}",
            response.status_code, types,
        )
