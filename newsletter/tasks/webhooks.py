"""Webhook delivery (beat, every WEBHOOK_POLL_INTERVAL): POST the due outbox rows."""
from __future__ import annotations

from celery import shared_task

from ..services.webhooks import webhook_deliveries


@shared_task(name="newsletter.tasks.webhooks.deliver_due")
def deliver_due() -> dict[str, int]:
    """Claim, POST and record one batch; retries are rows due later, so this never retries itself."""
    return webhook_deliveries.deliver_due()
