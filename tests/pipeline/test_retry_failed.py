"""Attempts recorded by real sends (worker, Celery task id), and "retry failed" through the real pipeline."""
from __future__ import annotations

from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Delivery, DeliveryStatus
from newsletter.models.delivery_attempt import DeliveryAttempt
from newsletter.services.campaigns import campaigns
from newsletter.services.delivery import send_log
from tests.pipeline.conftest import (
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    start,
    wait_until_status,
)


def _attempts(delivery_id: int) -> list[DeliveryAttempt]:
    """The delivery's history as the send log shows it (a send recorded onto its row is its last entry)."""
    db.session.rollback()
    return send_log.detail(delivery_id)[2]


def test_every_attempt_is_recorded_with_its_worker_and_task_id(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(30, prefix="a")
    later = emails[3]
    smtp_server.rule = lambda rcpt, attempt: "451 4.3.0 Try again later" if rcpt == later and attempt == 1 else None
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    rows = {d.email: d for d in db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}
    first, second = _attempts(rows[later].id)
    assert (first.attempt, first.status, first.smtp_code) == (1, "pending", 451)
    assert "Try again later" in first.smtp_message
    assert (second.attempt, second.status, second.smtp_code) == (2, "sent", 250)
    assert second.at >= first.at
    for attempt in (first, second):
        assert " pid " in attempt.worker and len(attempt.task_id) == 36  # a Celery task id (uuid)
    assert first.task_id != second.task_id  # the retry went out in another batch
    others = [_attempts(rows[e].id) for e in emails if e != later]
    assert all(len(a) == 1 and (a[0].attempt, a[0].status, a[0].smtp_code) == (1, "sent", 250) for a in others), \
        [[(x.attempt, x.status, x.smtp_code, x.smtp_message, x.worker) for x in a] for a in others if len(a) != 1][:3]
    assert len({a[0].task_id for a in others}) >= 1


def test_retry_failed_resends_transient_failures_and_cancelled_rows_once_each(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(40, prefix="f")
    transient, permanent = set(emails[:6]), set(emails[6:10])
    refuse = {"now": True}

    def rule(rcpt: str, attempt: int) -> str | None:
        if rcpt in permanent:
            return "550 5.1.1 No such user here"
        if rcpt in transient and refuse["now"]:
            return "452 4.2.2 Mailbox full"
        return None

    smtp_server.rule = rule
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    assert ledger(campaign_id) == {"sent": 30, "failed": 10}
    # A cancelled row too (as if the campaign had been cancelled before reaching it).
    cancelled = emails[20]
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.email == cancelled)
                       .values(status=DeliveryStatus.CANCELLED))
    db.session.commit()
    before = {e: len(smtp_server.received.get(e, [])) for e in emails}
    tries_before = dict(smtp_server.attempts)

    refuse["now"] = False
    assert campaigns.retry_failed(campaign_id) == 7
    ctx.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
    wait_until_status(campaign_id, "sent")

    after = {e: len(smtp_server.received.get(e, [])) for e in emails}
    resent = {e for e in emails if after[e] != before[e]}
    assert resent == transient | {cancelled}
    assert all(after[e] - before[e] == 1 for e in resent)
    assert all(smtp_server.attempts[e] == tries_before.get(e, 0) for e in permanent)  # not even tried
    assert ledger(campaign_id) == {"sent": 36, "failed": 4}
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.sent, campaign.failed, campaign.cancelled, campaign.finished_at is not None) == (36, 4, 0, True)
    row = db.session.scalar(select(Delivery).where(Delivery.email == emails[0]))
    history = [(a.status, a.smtp_code) for a in _attempts(row.id)]
    assert history[-2:] == [("requeued", None), ("sent", 250)] and history.count(("failed", 452)) == 1
    assert campaigns.get(campaign_id).status.value == "sent"
    from newsletter.models import AuditEvent

    retried = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.retried")).all()
    assert [(e.target_id, e.details["deliveries"]) for e in retried] == [(str(campaign_id), 7)]
