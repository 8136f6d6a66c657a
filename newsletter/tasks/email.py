"""The one-off mail tasks of earlier versions, kept registered as shims onto the notifications lane.

Confirmations, manage links, test emails and campaign tests are now notifications: the web
(or the import task) queues the row and enqueues `notifications.send_notification`. A message
published under one of these names before an upgrade may still arrive: it queues the same
row, once (the Celery task id is its idempotency key, so a redelivered message queues
nothing twice), and sends it right here through the same engine. No Celery retries: the row
is retried by the sweeper like any notification. Remove once no broker holds such messages.
"""
from __future__ import annotations

import os
import socket

from celery import Task, shared_task

from ..services.campaigns import send as campaign_send
from ..services.notifications import audience_mail, notifications, system_mail

HOST = socket.gethostname()
SHIM = {"bind": True, "acks_late": True, "reject_on_worker_lost": True}


def _send(task: Task, notification_ids: list[int | None]) -> list[str]:
    worker = f"{task.request.hostname or HOST} pid {os.getpid()}"
    return [notifications.send(int(i), worker=worker) for i in notification_ids if i is not None]


def _key(task: Task) -> str:
    return f"celery:{task.request.id}"


@shared_task(name="newsletter.tasks.email.send_test_email", **SHIM)
def send_test_email(self, to: str) -> list[str]:
    return _send(self, [system_mail.queue_test_email(str(to), idempotency_key=_key(self))])


@shared_task(name="newsletter.tasks.email.send_confirmation", **SHIM)
def send_confirmation(self, subscriber_id: int, list_ids: list[int]) -> list[str]:
    return _send(self, [audience_mail.queue_confirmation(int(subscriber_id), [int(i) for i in list_ids],
                                                         idempotency_key=_key(self))])


@shared_task(name="newsletter.tasks.email.send_manage_link", **SHIM)
def send_manage_link(self, subscriber_id: int) -> list[str]:
    return _send(self, [audience_mail.queue_manage_link(int(subscriber_id), idempotency_key=_key(self))])


@shared_task(name="newsletter.tasks.email.send_campaign_test", **SHIM)
def send_campaign_test(self, campaign_id: int, addresses: list[str], subscriber_id: int | None = None) -> list[str]:
    ids = campaign_send.queue_test(int(campaign_id), [str(a) for a in addresses][:campaign_send.MAX_TEST_ADDRESSES],
                                   int(subscriber_id) if subscriber_id else None, idempotency_key=_key(self))
    return _send(self, list(ids))
