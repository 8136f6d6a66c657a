"""Mail the platform sends about itself (the "is delivery working?" test email)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app, render_template
from flask_mail import Message

from ...extensions import mail
from .. import settings


def send_test_email(to: str) -> str:
    """Send the test email to `to` through the configured SMTP server; return its Message-ID.

    It checks the settings just saved, so it reads them fresh rather than from the cache."""
    current = settings.effective(fresh=True)
    context = {"sent_at": datetime.now(timezone.utc), "base_url": current_app.config["BASE_URL"]}
    message = Message(
        subject="Test email from your newsletter platform",
        recipients=[to],
        sender=current["MAIL_DEFAULT_SENDER"],
        body=render_template("emails/test_email.txt", **context),
        html=render_template("emails/test_email.html", **context),
    )
    mail.send(message, current.smtp)
    return message.msgId
