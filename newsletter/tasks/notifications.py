"""Transactional notifications: the send (transactional queue) and the sweeper (beat, default queue)."""
from __future__ import annotations

import os
import socket

from celery import shared_task
from flask import current_app

from ..services.notifications import notifications

HOST = socket.gethostname()


@shared_task(name="newsletter.tasks.notifications.send_notification", bind=True, acks_late=True,
             reject_on_worker_lost=True)
def send_notification(self, notification_id: int) -> str:
    # Never retried by Celery: a transient failure puts the row back to queued with its
    # retry time, and the sweeper publishes it again when due (no countdown outlives the
    # broker's visibility timeout). A duplicate message finds nothing to claim.
    return notifications.send(int(notification_id), worker=f"{self.request.hostname or HOST} pid {os.getpid()}")


@shared_task(name="newsletter.tasks.notifications.sweep")
def sweep() -> dict:
    """Beat: recover claims of vanished workers, then publish due retries and lost messages."""
    config = current_app.config
    recovered = notifications.recover_stale(config["SEND_CLAIM_TIMEOUT"])
    due = notifications.take_due(config["SEND_QUEUED_TIMEOUT"])
    celery_app = current_app.extensions["celery"]
    for notification_id in due:  # each committed by take_due before it is published
        celery_app.send_task(send_notification.name, args=(notification_id,))
    return {**recovered, "published": len(due)}
