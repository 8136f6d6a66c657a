"""Mail the platform sends about itself: the "is delivery working?" test email."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, render_template

from ...models import NotificationKind
from ..addresses import normalize_email
from . import one_off


def queue_test_email(to: str, idempotency_key: str | None = None) -> int:
    """Queue the test email to `to`; the notification id (the caller enqueues the send).

    It checks the settings just saved: its send reads them fresh rather than from the cache."""
    context = {"sent_at": datetime.now(UTC), "base_url": current_app.config["BASE_URL"]}
    return one_off.queue(NotificationKind.TEST_EMAIL, normalize_email(to, field="to"),
                         "Test email from your newsletter platform",
                         render_template("emails/test_email.html", **context),
                         render_template("emails/test_email.txt", **context), idempotency_key=idempotency_key)
