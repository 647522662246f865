"""Alerts: tell people when the marts were not published (or shipped with warnings).

``notify(event)`` sends one event to every configured target: a webhook (JSON POST), a Telegram
bot (``sendMessage``; the bot API base URL is configurable so tests hit a local receiver) and
e-mail over SMTP. Targets come from the environment (``CW_ALERT_*``) or, failing that, the
Airflow connection ``alerts_default`` (extra keys ``webhook_url``, ``telegram_bot_url`` or
``telegram_api_base`` + ``telegram_token`` (or the password), ``telegram_chat_id``, ``smtp_*``).

An alert never breaks the pipeline: a target that fails is logged and reported, not raised.
Tokens, passwords and webhook paths are secrets: every log line and returned status is redacted.
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)

ALERTS_CONN_ID = "alerts_default"
TELEGRAM_LIMIT = 4000
_BOT_TOKEN = re.compile(r"/bot[^/\s]+")


@dataclass(frozen=True)
class AlertConfig:
    webhook_url: str | None = None
    telegram_bot_url: str | None = field(default=None, repr=False)  # https://api.telegram.org/bot<token>
    telegram_chat_id: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_from: str = "customer-warehouse@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = False
    timeout: float = 10.0

    @property
    def targets(self) -> list[str]:
        out = []
        if self.webhook_url:
            out.append("webhook")
        if self.telegram_bot_url and self.telegram_chat_id:
            out.append("telegram")
        if self.smtp_host and self.smtp_to:
            out.append("email")
        return out

    def secrets(self) -> list[str]:
        found = [self.smtp_password or ""]
        if self.telegram_bot_url:
            found += [m.group(0)[4:] for m in _BOT_TOKEN.finditer(urlsplit(self.telegram_bot_url).path)]
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            found += [parts.path, parts.query, parts.password or ""]
        return [s for s in found if s and s != "/" and len(s) >= 4]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AlertConfig:
        env = os.environ if env is None else env
        bot_url = env.get("CW_ALERT_TELEGRAM_BOT_URL") or _bot_url(env.get("CW_ALERT_TELEGRAM_API_BASE"),
                                                                   env.get("CW_ALERT_TELEGRAM_TOKEN"))
        return cls(
            webhook_url=env.get("CW_ALERT_WEBHOOK_URL") or None,
            telegram_bot_url=bot_url,
            telegram_chat_id=env.get("CW_ALERT_TELEGRAM_CHAT_ID") or None,
            smtp_host=env.get("CW_ALERT_SMTP_HOST") or None,
            smtp_port=int(env.get("CW_ALERT_SMTP_PORT") or 25),
            smtp_user=env.get("CW_ALERT_SMTP_USER") or None,
            smtp_password=env.get("CW_ALERT_SMTP_PASSWORD") or None,
            smtp_from=env.get("CW_ALERT_SMTP_FROM") or cls.smtp_from,
            smtp_to=_split(env.get("CW_ALERT_SMTP_TO")),
            smtp_starttls=(env.get("CW_ALERT_SMTP_STARTTLS") or "").lower() in ("1", "true", "yes"),
        )

    @classmethod
    def from_connection(cls) -> AlertConfig | None:
        from ..connections import get_connection

        conn = get_connection(ALERTS_CONN_ID)
        if conn is None:
            return None
        x = conn.extra
        return cls(
            webhook_url=x.get("webhook_url") or None,
            telegram_bot_url=x.get("telegram_bot_url") or _bot_url(x.get("telegram_api_base"),
                                                                     x.get("telegram_token") or conn.password),
            telegram_chat_id=str(x["telegram_chat_id"]) if x.get("telegram_chat_id") else None,
            smtp_host=x.get("smtp_host") or None,
            smtp_port=int(x.get("smtp_port") or 25),
            smtp_user=x.get("smtp_user") or conn.login,
            smtp_password=x.get("smtp_password") or None,
            smtp_from=x.get("smtp_from") or cls.smtp_from,
            smtp_to=_split(x.get("smtp_to")),
            smtp_starttls=bool(x.get("smtp_starttls", False)),
        )

    @classmethod
    def resolve(cls) -> AlertConfig:
        """Environment first; the ``alerts_default`` connection when the environment names no target."""
        env = cls.from_env()
        if env.targets:
            return env
        return cls.from_connection() or env


def _bot_url(api_base: str | None, token: str | None) -> str | None:
    if not token:
        return None
    return f"{(api_base or 'https://api.telegram.org').rstrip('/')}/bot{token}"


def _split(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return tuple(v.strip() for v in str(value).split(",") if v.strip())


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret (and any Telegram bot token) replaced by ***."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return _BOT_TOKEN.sub("/bot***", text)


# -- sending ---------------------------------------------------------------------------------------
def notify(event: Mapping[str, Any], config: AlertConfig | None = None) -> dict[str, str]:
    """Send ``event`` (keys ``level``, ``title``, ``text``, optional ``run_date``, ``details``) to
    every configured target. Returns target → "sent" or a redacted error; never raises."""
    config = config or AlertConfig.resolve()
    event = {"source": "customer_warehouse", "level": "error", **event}
    senders: dict[str, Callable[[Mapping[str, Any], AlertConfig], None]] = {
        "webhook": _webhook, "telegram": _telegram, "email": _email,
    }
    outcome: dict[str, str] = {}
    if not config.targets:
        log.warning("alert not sent (no target configured): %s", event.get("title"))
    for target in config.targets:
        try:
            senders[target](event, config)
            outcome[target] = "sent"
        except Exception as err:  # an alert must never fail the run it reports on
            outcome[target] = redact(f"failed: {type(err).__name__}: {err}", config.secrets())
            log.warning("alert via %s %s", target, outcome[target])
    log.info("alert %r: %s", event.get("title"), outcome)
    return outcome


def _text(event: Mapping[str, Any]) -> str:
    head = f"[{str(event.get('level', 'error')).upper()}] {event.get('title', '')}"
    if event.get("run_date"):
        head += f" (run {event['run_date']})"
    return f"{head}\n{event.get('text', '')}".strip()


def _webhook(event: Mapping[str, Any], config: AlertConfig) -> None:
    response = httpx.post(config.webhook_url or "", json={**event, "message": _text(event)}, timeout=config.timeout)
    response.raise_for_status()


def _telegram(event: Mapping[str, Any], config: AlertConfig) -> None:
    text = _text(event)
    if len(text) > TELEGRAM_LIMIT:
        text = text[: TELEGRAM_LIMIT - 1] + "…"
    response = httpx.post(f"{(config.telegram_bot_url or '').rstrip('/')}/sendMessage",
                          json={"chat_id": config.telegram_chat_id, "text": text,
                                "disable_web_page_preview": True},
                          timeout=config.timeout)
    response.raise_for_status()
    if not response.json().get("ok", False):
        raise RuntimeError(f"telegram refused the message: {response.text[:200]}")


def _email(event: Mapping[str, Any], config: AlertConfig) -> None:
    msg = EmailMessage()
    msg["Subject"] = _text(event).splitlines()[0][:200]
    msg["From"] = config.smtp_from
    msg["To"] = ", ".join(config.smtp_to)
    msg.set_content(_text(event))
    with smtplib.SMTP(config.smtp_host or "", config.smtp_port, timeout=config.timeout) as smtp:
        if config.smtp_starttls:
            smtp.starttls()
        if config.smtp_user and config.smtp_password:
            smtp.login(config.smtp_user, config.smtp_password)
        smtp.send_message(msg)
