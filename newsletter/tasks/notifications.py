"""Transactional notification tasks (being built; routed to the `transactional` queue)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="newsletter.tasks.notifications.sweep")
def sweep() -> dict:
    return {}
