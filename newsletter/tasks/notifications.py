"""Transactional notifications: the send (transactional queue) and the sweeper (beat, default queue)."""
from __future__ import annotations

import os
import socket

from celery import shared_task

from ..services.notifications import chunks, notifications
from .publish import enqueue

HOST = socket.gethostname()


@shared_task(name="newsletter.tasks.notifications.send_notification", bind=True, acks_late=True,
             reject_on_worker_lost=True)
def send_notification(self, notification_id: int) -> str:
    # Never retried by Celery: a transient failure puts the row back to queued with its
    # retry time, and the sweeper publishes it again when due (no countdown outlives the
    # broker's visibility timeout). A duplicate message finds nothing to claim.
    return notifications.send(int(notification_id), worker=f"{self.request.hostname or HOST} pid {os.getpid()}")


@shared_task(name="newsletter.tasks.notifications.send_notifications", bind=True, acks_late=True,
             reject_on_worker_lost=True)
def send_notifications(self, notification_ids: list[int]) -> dict[str, int]:
    """A few notifications in one message (the automation runner's): one broker message, task
    start and claim for the lot, sent over several SMTP sessions side by side, fenced per round
    (services/notifications/chunks.py). A redelivered message finds the ones already sent, or
    claimed, not queued: nothing is sent twice."""
    return chunks.send_many([int(i) for i in notification_ids],
                                   worker=f"{self.request.hostname or HOST} pid {os.getpid()}")


@shared_task(name="newsletter.tasks.notifications.sweep")
def sweep() -> dict:
    """Beat: recover claims of vanished workers, then publish due retries and lost messages."""
    return notifications.sweep(lambda notification_id: enqueue(send_notification, notification_id))
