"""Mail the platform sends about itself (the "is delivery working?" test email)."""
from __future__ import annotations

from datetime import datetime, timezone

from flask import current_app, render_template
from flask_mail import Message

from ..extensions import mail


def send_test_email(to: str) -> str:
    """Send the test email to `to` through the configured SMTP server; return its Message-ID."""
    context = {"sent_at": datetime.now(timezone.utc), "base_url": current_app.config["BASE_URL"]}
    message = Message(
        subject="Test email from your newsletter platform",
        recipients=[to],
        body=render_template("emails/test_email.txt", **context),
        html=render_template("emails/test_email.html", **context),
    )
    mail.send(message)
    return message.msgId
