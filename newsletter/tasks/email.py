"""Transactional mail tasks (routed to the `transactional` queue)."""
from __future__ import annotations

import smtplib

from celery import shared_task

from ..services.campaigns import send as campaign_send
from ..services.notifications import audience_mail, system_mail

# Only errors where the server may well accept the same message a little later.
SMTP_RETRY = {
    "autoretry_for": (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError, TimeoutError),
    "retry_backoff": True,
    "retry_backoff_max": 60,
    "max_retries": 5,
}


@shared_task(name="newsletter.tasks.email.send_test_email", bind=True, **SMTP_RETRY)
def send_test_email(self, to: str) -> str:
    return system_mail.send_test_email(to)


@shared_task(name="newsletter.tasks.email.send_confirmation", **SMTP_RETRY)
def send_confirmation(subscriber_id: int, list_ids: list[int]) -> str | None:
    return audience_mail.send_confirmation(int(subscriber_id), [int(i) for i in list_ids])


@shared_task(name="newsletter.tasks.email.send_manage_link", **SMTP_RETRY)
def send_manage_link(subscriber_id: int) -> str | None:
    return audience_mail.send_manage_link(int(subscriber_id))


@shared_task(name="newsletter.tasks.email.send_campaign_test", **SMTP_RETRY)
def send_campaign_test(campaign_id: int, addresses: list[str], subscriber_id: int | None = None) -> int:
    return campaign_send.send_test(int(campaign_id), [str(a) for a in addresses][:10],
                                   int(subscriber_id) if subscriber_id else None)
