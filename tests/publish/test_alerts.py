"""Alerts reach a webhook, a Telegram bot API and an SMTP server (all local), and never leak secrets."""

from __future__ import annotations

import logging

from customer_warehouse.publish.alerts import AlertConfig, notify, redact
from receivers import http_receiver, smtp_receiver

TOKEN = "123456:AAE-secret-bot-token"
EVENT = {"level": "error", "title": "Marts not published: quality gate blocked", "run_date": "2026-11-20",
         "text": "[block] marts_build.customer_profitability · revenue_reconciles: failed — observed 4290 "
                 "vs expected 4260"}


def test_webhook_telegram_and_email_receive_the_summary():
    with http_receiver() as (base, received), smtp_receiver() as (port, mails):
        config = AlertConfig.from_env({
            "CW_ALERT_WEBHOOK_URL": f"{base}/hooks/quality",
            "CW_ALERT_TELEGRAM_API_BASE": base, "CW_ALERT_TELEGRAM_TOKEN": TOKEN,
            "CW_ALERT_TELEGRAM_CHAT_ID": "-10042",
            "CW_ALERT_SMTP_HOST": "127.0.0.1", "CW_ALERT_SMTP_PORT": str(port),
            "CW_ALERT_SMTP_TO": "data-team@example.ru",
        })
        outcome = notify(EVENT, config)

    assert outcome == {"webhook": "sent", "telegram": "sent", "email": "sent"}
    paths = {path: body for path, body in received}
    hook = paths["/hooks/quality"]
    assert hook["level"] == "error" and hook["run_date"] == "2026-11-20"
    assert "revenue_reconciles" in hook["message"] and "4290" in hook["text"]
    telegram = paths[f"/bot{TOKEN}/sendMessage"]
    assert telegram["chat_id"] == "-10042" and "revenue_reconciles" in telegram["text"]
    assert len(mails) == 1 and "Subject: [ERROR] Marts not published" in mails[0]
    assert "data-team@example.ru" in mails[0]


def test_failed_target_is_reported_redacted_and_not_raised(caplog):
    caplog.set_level(logging.DEBUG, logger="customer_warehouse")
    with http_receiver(status=401) as (base, received):
        config = AlertConfig(telegram_bot_url=f"{base}/bot{TOKEN}", telegram_chat_id="1",
                             webhook_url=f"{base}/services/T000/B000/hook-secret-path")
        outcome = notify(EVENT, config)
    assert len(received) == 2  # both were attempted
    assert outcome["telegram"].startswith("failed") and outcome["webhook"].startswith("failed")
    everything = caplog.text + repr(outcome)
    assert TOKEN not in everything and "hook-secret-path" not in everything
    assert "/bot***" in everything


def test_no_target_configured_is_a_logged_no_op(caplog):
    assert notify(EVENT, AlertConfig()) == {}
    assert "no target configured" in caplog.text


def test_redact_masks_listed_secrets_and_bot_tokens():
    text = redact(f"GET https://api.telegram.org/bot{TOKEN}/sendMessage pw=hunter22", ["hunter22"])
    assert TOKEN not in text and "hunter22" not in text


def test_airflow_connections_configure_alerts_and_the_hmac_key(monkeypatch):
    import json

    from customer_warehouse.publish import pii

    for var in ("CW_ALERT_WEBHOOK_URL", "CW_ALERT_TELEGRAM_BOT_URL", "CW_ALERT_TELEGRAM_TOKEN", "CW_ALERT_SMTP_HOST",
                "CW_PII_HMAC_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_DEFAULT", json.dumps({
        "conn_type": "generic", "password": TOKEN,
        "extra": {"webhook_url": "http://127.0.0.1:9/hook", "telegram_api_base": "http://127.0.0.1:9",
                  "telegram_chat_id": -100500}}))
    monkeypatch.setenv("AIRFLOW_CONN_PII_HMAC_KEY", json.dumps({"conn_type": "generic", "password": "from-conn"}))
    config = AlertConfig.resolve()
    assert config.targets == ["webhook", "telegram"]
    assert config.telegram_bot_url == f"http://127.0.0.1:9/bot{TOKEN}" and config.telegram_chat_id == "-100500"
    assert TOKEN not in repr(config)
    assert pii.hmac_key() == "from-conn"
