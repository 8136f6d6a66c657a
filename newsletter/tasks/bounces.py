"""The bounce mailbox (beat, every BOUNCE_POLL_INTERVAL): file and record what came back."""
from __future__ import annotations

from celery import shared_task

from ..services.deliverability import mailbox


@shared_task(name="newsletter.tasks.bounces.poll_mailbox")
def poll_mailbox(part: int = 0, parts: int = 1) -> dict[str, int]:
    """One poll of one part of the mailbox; a poll of that part running elsewhere makes this a
    no-op ({"busy": 1})."""
    return mailbox.poll(int(part), max(1, int(parts)))
