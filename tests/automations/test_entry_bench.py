"""The automation entry bench (bench/automation_bench.py runs it): N subscribers enter an
automation at once (one bulk add to its list) while a campaign sends, on the session's real
workers, beat and SMTP server. Skipped unless AUTOMATION_BENCH_N is set.

Prints one line `automation entry bench: {...}`: the campaign's msgs/s alone and during the
entry, the automation's throughput, how long a notification sent in the middle took, and a
check that every automation email arrived exactly once.
"""
from __future__ import annotations

import json
import os
import time

import pytest
from sqlalchemy import func, insert, select

from newsletter.extensions import db
from newsletter.models import (
    AutomationEvent,
    Enrollment,
    EnrollmentState,
    MailingList,
    Notification,
    NotificationKind,
    NotificationStatus,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.models.base import utcnow
from newsletter.services import settings
from newsletter.services.audience import subscribers
from newsletter.services.automations import automations
from newsletter.services.notifications import notifications
from newsletter.tasks import enqueue
from newsletter.tasks.notifications import send_notification
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.net import wait_for

N = int(os.environ.get("AUTOMATION_BENCH_N") or 0)
CAMPAIGN = int(os.environ.get("AUTOMATION_BENCH_CAMPAIGN") or 20_000)
NOTIFY_RATE = os.environ.get("AUTOMATION_BENCH_NOTIFY_RATE") or "500"

pytestmark = pytest.mark.skipif(not N, reason="the automation entry bench: set AUTOMATION_BENCH_N "
                                              "(bench/automation_bench.py)")


def _staging(n: int) -> int:
    """`n` confirmed subscribers on a staging list (not the automation's), inserted in bulk."""
    staging = MailingList(name="Staging", opt_in=OptIn.SINGLE)
    db.session.add(staging)
    db.session.flush()
    now = utcnow()
    for first in range(0, n, 20_000):
        emails = [f"auto{i:06d}@example.net" for i in range(first, min(n, first + 20_000))]
        db.session.execute(insert(Subscriber), [
            {"email": e, "name": "Auto", "attributes": {}, "status": SubscriberStatus.CONFIRMED,
             "created_at": now, "updated_at": now, "confirmed_at": now} for e in emails])
        ids = db.session.scalars(select(Subscriber.id).where(Subscriber.email.in_(emails))).all()
        db.session.execute(insert(Subscription), [
            {"subscriber_id": i, "list_id": staging.id, "status": SubscriptionStatus.CONFIRMED,
             "created_at": now, "updated_at": now} for i in ids])
    db.session.commit()
    return staging.id


def _campaign(app, prefix: str, during=None) -> dict:
    list_id, _ = make_audience(CAMPAIGN, prefix=prefix)
    campaign_id = make_campaign([list_id])
    t0 = time.monotonic()
    start(app, campaign_id)
    extra = during() if during else {}
    wait_until_status(campaign_id, "sent", timeout=1800)
    elapsed = time.monotonic() - t0
    return {"campaign_s": round(elapsed, 2), "campaign_msgs_per_s": round(CAMPAIGN / elapsed, 1), **extra}


def _count(query) -> int:
    db.session.rollback()
    return db.session.scalar(query) or 0


def _automation_mail(status: NotificationStatus | None = None):
    query = select(func.count()).select_from(Notification).where(Notification.kind == NotificationKind.AUTOMATION)
    return query.where(Notification.status == status) if status else query


@pytest.mark.timeout(7200)
def test_entry_while_a_campaign_sends(app, worker, transactional_worker, beat, smtp_server):
    with app.app_context():
        settings.save({"SEND_RATE": "100000", "NOTIFY_RATE": NOTIFY_RATE}, None)
        try:
            _run(app, smtp_server)
        finally:
            settings.save({"SEND_RATE": None, "NOTIFY_RATE": None}, None)


def _run(app, smtp_server) -> None:
    alone = _campaign(app, "solo")
    print("campaign alone:", alone, flush=True)
    staging = _staging(N)
    welcome = MailingList(name="Welcome", opt_in=OptIn.SINGLE)
    db.session.add(welcome)
    db.session.commit()
    automation = automations.create("Welcome", "subscribed", str(welcome.id),
                                    [{"kind": "send", "params": {"subject": "Welcome {{ subscriber.name }}",
                                                                 "html": "<p>Hello {{ subscriber.email }}</p>"}}])
    automations.set_status(automation.id, "active")
    marks: dict[str, float] = {}

    def enter() -> dict:
        t0 = time.monotonic()
        added = subscribers.bulk_add_to_list(welcome.id, filters=subscribers.make_filters(list_id=staging))
        marks["t0"], marks["entered"] = t0, time.monotonic()
        # A notification in the middle of it all: how long the transactional lane makes it wait.
        probe, _ = notifications.accept({"to": {"email": "probe@example.org"}, "subject": "Probe", "text": "x"})
        enqueue(send_notification, probe.id)
        marks["probe_id"] = probe.id
        return {"bulk_add_s": round(marks["entered"] - t0, 2), "added": added}

    during = _campaign(app, "with", during=enter)
    print("campaign during the entry:", during, flush=True)
    probe = wait_for(lambda: db.session.rollback() or (
        (row := db.session.get(Notification, marks["probe_id"], populate_existing=True)) is not None
        and row.status == NotificationStatus.SENT and row), 600, message="the probe notification")
    probe_s = (probe.sent_at - probe.created_at).total_seconds()
    enrolled_at = wait_for(lambda: _count(select(func.count()).select_from(AutomationEvent)
                                          .where(AutomationEvent.processed.is_(False))) == 0 and time.monotonic(),
                           1800, interval=0.5, message="every event processed")
    done_at = wait_for(lambda: _count(_automation_mail(NotificationStatus.SENT)) >= N and time.monotonic(),
                       3600, interval=0.5, message="every automation email sent")
    time.sleep(3)
    completed = _count(select(func.count()).select_from(Enrollment).where(
        Enrollment.state == EnrollmentState.COMPLETED))
    received = {e: len(v) for e, v in smtp_server.received.items() if e.startswith("auto")}
    result = {
        "n": N, "campaign_n": CAMPAIGN, "notify_rate": float(NOTIFY_RATE),
        **{f"alone_{k}": v for k, v in alone.items()},
        **{f"during_{k}": v for k, v in during.items()},
        "campaign_during_over_alone": round(during["campaign_msgs_per_s"] / alone["campaign_msgs_per_s"], 3),
        "enrolled_s": round(enrolled_at - marks["t0"], 2),
        "automation_all_sent_s": round(done_at - marks["t0"], 2),
        "automation_msgs_per_s": round(N / (done_at - marks["t0"]), 1),
        "probe_notification_s": round(probe_s, 2),
        "completed": completed, "automation_emails": _count(_automation_mail()),
        "received_once": sum(1 for v in received.values() if v == 1),
        "received_twice_or_more": sum(1 for v in received.values() if v > 1),
        "load_average": os.getloadavg(),
    }
    print("automation entry bench: " + json.dumps(result))
    assert result["received_once"] == N and result["received_twice_or_more"] == 0 and completed == N
