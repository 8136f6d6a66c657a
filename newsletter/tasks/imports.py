"""The CSV import task (default queue): run the job, retry on infrastructure errors."""
from __future__ import annotations

from collections import defaultdict

from celery import shared_task
from celery.utils.log import get_task_logger
from sqlalchemy.exc import DBAPIError, OperationalError

from ..services.audience import imports
from ..services.notifications import audience_mail
from .notifications import send_notification
from .publish import enqueue

log = get_task_logger(__name__)


def _send_confirmations(memberships: list[tuple[int, int]]) -> None:
    """Opt-in imports: one confirmation email per subscriber, after the batch committed.

    The batch's confirmations are queued in one transaction, then their sends enqueued."""
    by_subscriber: dict[int, list[int]] = defaultdict(list)
    for subscriber_id, list_id in memberships:
        by_subscriber[subscriber_id].append(list_id)
    for notification_id in audience_mail.queue_confirmations(
            {subscriber_id: sorted(list_ids) for subscriber_id, list_ids in by_subscriber.items()}):
        enqueue(send_notification, notification_id)


@shared_task(name="newsletter.tasks.imports.run_import", bind=True, max_retries=5,
             soft_time_limit=3 * 3600, time_limit=3 * 3600 + 60)
def run_import(self, job_id: int) -> dict:
    try:
        job = imports.run(job_id, on_batch=_send_confirmations)
    except (OperationalError, DBAPIError) as exc:
        # The database went away or a concurrent signup raced a batch: the batch rolled
        # back, and the job resumes after its last committed batch.
        if self.request.retries >= self.max_retries:
            log.error("import %s stopped after %s retries: %s", job_id, self.max_retries, exc)
            imports.fail(job_id, f"The database refused the next batch {self.max_retries + 1} times "
                                 "(the details are in the worker's log).")
            return {"status": "failed"}
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries)) from exc
    except Exception:
        # The exception's text is for the log (Celery logs it, re-raised), not for the page.
        imports.fail(job_id, "An internal error stopped it (the details are in the worker's log).")
        raise
    return {"status": job.status.value, "rows": job.rows}
