"""Counting opens and clicks (beat, every ENGAGEMENT_FLUSH_INTERVAL): buffered events into the counters."""
from __future__ import annotations

from celery import shared_task

from ..services.engagement import flush


@shared_task(name="newsletter.tasks.engagement.flush_events")
def flush_events() -> dict[str, int]:
    """Safe to run twice or concurrently: each batch is counted once (see the service)."""
    return flush.run()
