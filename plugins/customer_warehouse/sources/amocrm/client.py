"""HTTP client of amoCRM API v4: paging, self-throttling, retries, OAuth token refresh.

amoCRM allows 7 requests a second and punishes repeated violations by blocking the whole
account (every request then answers 403 for a while), so the client throttles itself before
every request instead of relying on retries, and treats 403 as final: retrying a blocked
account only prolongs the block. 429, 5xx and transport errors are retried with bounded backoff.

A 401 with refresh credentials triggers one ``POST /oauth2/access_token`` (the refresh token
rotates on every use); the new pair is handed to ``on_tokens`` so the caller can persist it —
the old refresh token is dead from that moment on.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

log = logging.getLogger(__name__)

_msgspec_decode = msgspec.json.Decoder().decode


def decode_json(body: bytes) -> tuple[Any, bool]:
    """(parsed body, strict): msgspec when the body is strict JSON (the usual case, ~2x faster than
    ``json.loads``, same Python values — big integers included); else ``json.loads`` exactly as
    before (``NaN``/``Infinity`` literals, numbers out of float range, lone surrogates), with
    ``strict=False`` so the loader serialises such records the old way. A body neither accepts
    raises ``ValueError`` (a truncated body: retried)."""
    try:
        return _msgspec_decode(body), True
    except msgspec.DecodeError:
        return json.loads(body), False

PAGE_LIMIT = 250
_EPSILON = 1e-6  # a sleep of exactly the computed wait may end a rounding error short
EVENTS_PAGE_LIMIT = 100


class AmoError(RuntimeError):
    """amoCRM answered something the client cannot recover from."""


class AmoAuthError(AmoError):
    """401 that a token refresh cannot fix (no refresh credentials, or the refresh was refused)."""


class AmoBlockedError(AmoError):
    """403: the account is blocked (usually after repeated rate-limit violations). Never retried."""


class RequestThrottle:
    """At most ``rate`` requests in any window of ``per`` seconds (a token bucket whose tokens come
    back exactly one period after use).

    A classic bucket refilled continuously lets ``2 × rate`` requests land inside one second
    (a full bucket plus its refill), which a per-second server counter punishes. ``margin`` widens
    the period so network and scheduling jitter cannot squeeze eight requests into the server's
    second (0.1 s was seen to fail on a loaded machine; 429s lead to a 403 block, so err wide).
    """

    def __init__(self, rate: float, per: float = 1.0, margin: float = 0.2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.capacity = max(1, int(rate))
        self.period = per + margin
        self.clock, self.sleep = clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            while True:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.period - _EPSILON:
                    self._sent.popleft()
                if len(self._sent) < self.capacity:
                    self._sent.append(now)
                    return
                self.sleep(self.period - (now - self._sent[0]))


class NoThrottle:
    """``requests_per_second = 0``: no client-side pacing at all. Only for emulators and the
    benchmark (``python -m bench --api-quotas lifted``): the real amoCRM blocks an account that
    goes over 7 requests/s."""

    capacity = 0

    def acquire(self) -> None:
        return None


_SHARED: dict[tuple[str, float], RequestThrottle] = {}
_SHARED_LOCK = threading.Lock()


def shared_throttle(base_url: str, rate: float) -> RequestThrottle | NoThrottle:
    """One throttle per account and rate in this process: the account's limit is shared by every
    client of it, so back-to-back runs (or threads) do not each start with a fresh allowance.
    Separate processes do not share it: the DAG runs one amoCRM unit at a time
    (``max_active_tis_per_dagrun=1``); other DAGs using the same account need an Airflow pool of size 1.
    A rate of 0 (or below) means no throttle (emulators and the benchmark only)."""
    if rate <= 0:
        return NoThrottle()
    with _SHARED_LOCK:
        key = (base_url, rate)
        if key not in _SHARED:
            _SHARED[key] = RequestThrottle(rate)
        return _SHARED[key]


@dataclass
class OAuthCredentials:
    client_id: str
    client_secret: str
    refresh_token: str
    redirect_uri: str = ""


@dataclass(frozen=True)
class Page:
    number: int
    items: list[Any]
    status: int
    strict: bool = False  # the body was strict JSON (decoded by msgspec): no NaN/inf/lone surrogates


class AmoClient:
    """One amoCRM account. ``base_url`` is the account URL (``https://acme.amocrm.ru``).

    ``rate_limit`` is the client's own pace in requests/s (the connection extra
    ``requests_per_second``, default 7: amoCRM's documented limit); 0 turns the throttle off.
    """

    def __init__(self, base_url: str, token: str | None, *, oauth: OAuthCredentials | None = None,
                 on_tokens: Callable[[str, str], None] | None = None, rate_limit: float = 7.0,
                 max_retries: int = 5, backoff_base: float = 1.0, backoff_max: float = 60.0,
                 timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.token = token or ""
        self.oauth = oauth
        self.on_tokens = on_tokens
        self.throttle = shared_throttle(self.base_url, rate_limit)
        self.max_retries = max_retries
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.requests_made = 0
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": "customer-warehouse/amocrm"})

    def __enter__(self) -> AmoClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- transport -----------------------------------------------------------------------------
    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.backoff_max)
            except ValueError:
                pass
        return min(self.backoff_base * 2 ** (attempt - 1), self.backoff_max) * (1 + random.random() / 4)

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        self.throttle.acquire()
        self.requests_made += 1
        return self._http.request(method, url, **kwargs)

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
        """GET ``path``; returns (status, parsed JSON or None for 204). Retries what is transient."""
        status, data, _ = self._get(path, params)
        return status, data

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any, bool]:
        """:meth:`get` plus whether the body was strict JSON (see :func:`decode_json`)."""
        url = self.base_url + path
        attempt = 0
        refreshed = False
        while True:
            try:
                resp = self._send("GET", url, params=params,
                                  headers={"Authorization": f"Bearer {self.token}"})
                if resp.status_code == 204:
                    return 204, None, True
                if resp.status_code == 200:
                    return (200, *decode_json(resp.content))
            except (httpx.TransportError, ValueError) as exc:  # reset, timeout, truncated body
                attempt += 1
                if attempt > self.max_retries:
                    raise AmoError(f"GET {path}: gave up after {attempt} attempts: {exc!r}") from exc
                delay = self._backoff(attempt, None)
                log.warning("amocrm GET %s: %r; retry %d in %.1fs", path, exc, attempt, delay)
                time.sleep(delay)
                continue
            status = resp.status_code
            if status == 401:
                if refreshed:
                    raise AmoAuthError(f"GET {path}: 401 even with a freshly refreshed token")
                self.refresh()
                refreshed = True
                continue
            if status == 403:
                raise AmoBlockedError(
                    f"GET {path}: 403 Forbidden — the account is blocked (rate-limit violations) or the "
                    f"token lacks access; not retrying. Body: {resp.text[:300]}")
            if status == 429 or status >= 500:
                attempt += 1
                if attempt > self.max_retries:
                    raise AmoError(f"GET {path}: HTTP {status} after {attempt} attempts: {resp.text[:300]}")
                delay = self._backoff(attempt, resp.headers.get("Retry-After"))
                log.warning("amocrm GET %s: HTTP %d; retry %d in %.1fs", path, status, attempt, delay)
                time.sleep(delay)
                continue
            raise AmoError(f"GET {path} {params}: HTTP {status}: {resp.text[:500]}")

    def refresh(self) -> None:
        """Exchange the refresh token for a new pair (the old refresh token dies)."""
        if self.oauth is None:
            raise AmoAuthError(
                "amoCRM answered 401 (access token invalid or expired) and the connection has no "
                "client_id/client_secret/refresh_token in its extra to refresh it; put a fresh token in "
                "the connection password or add the OAuth credentials")
        body = {"client_id": self.oauth.client_id, "client_secret": self.oauth.client_secret,
                "grant_type": "refresh_token", "refresh_token": self.oauth.refresh_token,
                "redirect_uri": self.oauth.redirect_uri}
        try:
            resp = self._send("POST", self.base_url + "/oauth2/access_token", json=body)
        except httpx.TransportError as exc:
            raise AmoAuthError(f"token refresh failed: {exc!r}") from exc
        if resp.status_code != 200:
            raise AmoAuthError(f"token refresh refused: HTTP {resp.status_code}: {resp.text[:300]} "
                               "(the refresh token may have been used already or expired)")
        data = resp.json()
        self.token = data["access_token"]
        self.oauth.refresh_token = data["refresh_token"]
        log.info("amocrm: access token refreshed; refresh token rotated")
        if self.on_tokens:
            self.on_tokens(self.token, self.oauth.refresh_token)

    # -- lists ---------------------------------------------------------------------------------
    def pages(self, path: str, embedded: str, params: dict[str, Any] | None = None,
              limit: int = PAGE_LIMIT) -> Iterator[Page]:
        """Every page of a HAL list, following ``_links.next``; 204 ends the list."""
        page = 1
        while True:
            status, data, strict = self._get(path, {**(params or {}), "page": page, "limit": limit})
            if status == 204 or data is None:
                return
            if not isinstance(data, dict):
                raise AmoError(f"GET {path} page {page}: expected a HAL object, got {type(data).__name__}")
            items = (data.get("_embedded") or {}).get(embedded) or []
            yield Page(page, items, status, strict)
            if not items or "next" not in (data.get("_links") or {}):
                return
            page += 1
