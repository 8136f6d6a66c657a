"""Errors to Sentry (sentry-sdk, Flask and Celery integrations) when SENTRY_DSN is set.

Without SENTRY_DSN nothing happens: sentry_sdk is not even imported. With it, every event and
transaction passes through `before_send`, which scrubs it (scrub.py) and tags it with the log
context (request_id, task_id, campaign_id...), so an error leads to its log lines. On top:
no personal data by default (no user, cookies, client address), no request bodies, no local
variables (a frame's locals hold addresses, rendered messages, SMTP credentials).
"""
from __future__ import annotations

from typing import Any

from . import context
from .scrub import scrub

TAGGED = ("request_id", "task_id", "task", "campaign_id", "notification_id", "subscriber_id", "job_id")


def before_send(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies"):
            request.pop(key, None)
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    tags = event.setdefault("tags", {})
    if isinstance(tags, dict):
        for key, value in context.current().items():
            if key in TAGGED:
                tags.setdefault(key, str(value))
    return scrub(event)


def init(config: dict[str, Any]) -> bool:
    """Start reporting if SENTRY_DSN is set; True if it did."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=config["SENTRY_ENVIRONMENT"],
        traces_sample_rate=config["SENTRY_TRACES_SAMPLE_RATE"],
        integrations=[FlaskIntegration(), CeleryIntegration()],
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=before_send,  # type: ignore[arg-type]
        before_send_transaction=before_send,  # type: ignore[arg-type]
    )
    return True
