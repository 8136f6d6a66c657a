"""Webhook delivery tasks (being built)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="newsletter.tasks.webhooks.deliver_due")
def deliver_due() -> int:
    return 0
