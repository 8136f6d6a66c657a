"""The per-recipient send, carried in batches (bulk queue): one chord header task per batch."""
from __future__ import annotations

import os
import socket

from celery import shared_task

from ..services.campaigns import send as campaign_send

HOST = socket.gethostname()


# No result of its own (task_ignore_result): the Redis result backend joins a chord's parts
# in its own list, which it deletes once the callback has them. A stored result per batch
# (~440 bytes, kept RESULT_EXPIRES) grew Redis by ~16 MB an hour at full speed.
@shared_task(name="newsletter.tasks.bulk.send_batch", bind=True, acks_late=True, reject_on_worker_lost=True)
def send_batch(self, campaign_id: int, delivery_ids: list[int]) -> dict:
    # Never raises for a recipient's failure: a header task that raised would turn the
    # chord callback into a ChordError. Infrastructure errors (database down) do raise,
    # and the sweeper recovers the rows this batch had claimed.
    return campaign_send.send_batch(int(campaign_id), [int(i) for i in delivery_ids],
                                    # pid read per call: the pool forks after this module is imported
                                    worker=f"{self.request.hostname or HOST} pid {os.getpid()}",
                                    task_id=self.request.id or "")
