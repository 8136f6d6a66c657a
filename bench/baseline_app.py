"""The `baseline` variant: a Celery newsletter sender written the way tutorials write it.

One task per recipient, a new `smtplib.SMTP` connection per message, an
`email.message.EmailMessage` built per recipient, default Celery settings (only the broker
and the result backend are set), and a chord whose callback counts the results. The bench
starts `celery -A baseline_app worker` with the same pool and concurrency as the platform.

Environment (set by bench/send_bench.py): BASELINE_REDIS_URL, BASELINE_SMTP_PORT and
BASELINE_TEMPLATE (a JSON file with subject, text and html, rendered once by the platform,
so both variants send the same content; `%NAME%` is replaced by the recipient's name).
"""
from __future__ import annotations

import json
import os
import smtplib
from email.message import EmailMessage

from celery import Celery

REDIS_URL = os.environ.get("BASELINE_REDIS_URL", "redis://127.0.0.1:6379/9")
app = Celery("baseline", broker=REDIS_URL, backend=REDIS_URL)

SMTP_HOST = "127.0.0.1"
SMTP_PORT = int(os.environ.get("BASELINE_SMTP_PORT", "2525"))
_template_path = os.environ.get("BASELINE_TEMPLATE")
TEMPLATE = json.load(open(_template_path, encoding="utf-8")) if _template_path else {
    "subject": "News for %NAME%", "text": "Hello %NAME%", "html": "<p>Hello %NAME%</p>"}


@app.task
def send_email(to: str, name: str) -> bool:
    msg = EmailMessage()
    msg["Subject"] = TEMPLATE["subject"].replace("%NAME%", name)
    msg["From"] = "Newsletter <news@example.com>"
    msg["To"] = to
    msg.set_content(TEMPLATE["text"].replace("%NAME%", name))
    msg.add_alternative(TEMPLATE["html"].replace("%NAME%", name), subtype="html")
    with smtplib.SMTP(SMTP_HOST, SMTP_PORT, timeout=10) as smtp:
        smtp.send_message(msg)
    return True


@app.task
def count_sent(results: list) -> int:
    return sum(1 for r in results if r)
