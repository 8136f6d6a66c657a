"""A transactional worker SIGKILLed while it sends automation emails: each step once, everyone completes.

Its own processes, as tests/faults/test_worker_death.py runs them: a survivor (bulk and default:
the sweeps) with beat, and a victim consuming `transactional` (the automation runs and their
emails, sent in chunks over several SMTP sessions: services/notifications/chunks.py). A few
hundred subscribers enter a two-email automation at once; once the victim has sent some and holds
claimed rows, its whole process group is killed and a new transactional worker started. The
claim timeout is 120 s, so only the victim's liveness lease (2 s) can explain its rows coming
back; the SMTP server counts each subscriber's messages by subject.
"""
from __future__ import annotations

import email
import email.policy
import os
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import (
    Enrollment,
    EnrollmentState,
    MailingList,
    Notification,
    NotificationKind,
    NotificationStatus,
    OptIn,
)
from newsletter.services import settings
from newsletter.services.audience import subscribers
from newsletter.services.automations import automations
from tests.automations.conftest import confirmed_on_list
from tests.support.net import wait_for
from tests.support.processes import celery_beat, celery_worker

pytestmark = pytest.mark.timeout(420)

N = 300
STEPS = [{"kind": "send", "params": {"subject": "First {{ subscriber.name }}", "text": "One"}},
         {"kind": "send", "params": {"subject": "Second {{ subscriber.name }}", "text": "Two"}}]
CLAIM_TIMEOUT = 120
# The lease (2 s, renewed every 0.4 s) recovers a dead worker's claims; the claim timeout never fires.
# A message the dead worker had reserved but not started comes back at once on RabbitMQ; on the
# Redis broker only after its visibility timeout, so there the sweeper republishes its rows after
# SEND_QUEUED_TIMEOUT (20 s), as in production.
KILL_ENV = {"LEASE_TTL": "2", "LEASE_RENEW_INTERVAL": "0.4", "SWEEP_INTERVAL": "1", "AUTOMATION_INTERVAL": "1",
            "SEND_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT), "SEND_QUEUED_TIMEOUT": "20", "AUTOMATION_SEND_CHUNK": "10"}
HELD = (NotificationStatus.SENDING, NotificationStatus.COMMITTING)


def _enter(n: int) -> tuple[int, list[str]]:
    """`n` confirmed subscribers join the automation's list in one bulk add (n events, one transaction)."""
    staging = MailingList(name="Staging", opt_in=OptIn.SINGLE)
    welcome = MailingList(name="Welcome", opt_in=OptIn.SINGLE)
    db.session.add_all([staging, welcome])
    db.session.flush()
    emails = [f"kill{i:04d}@example.net" for i in range(n)]
    confirmed_on_list(staging.id, emails, "Kim")
    db.session.commit()
    automation = automations.create("Two emails", "subscribed", str(welcome.id), STEPS)
    automations.set_status(automation.id, "active")
    assert subscribers.bulk_add_to_list(welcome.id, filters=subscribers.make_filters(list_id=staging.id)) == n
    return automation.id, emails


def _held_by(pattern: str) -> list[int]:
    db.session.rollback()
    ids = list(db.session.scalars(select(Notification.id).where(
        Notification.kind == NotificationKind.AUTOMATION, Notification.status.in_(HELD),
        Notification.worker.like(pattern))))
    db.session.commit()
    return ids


def _count(query) -> int:
    db.session.rollback()
    found = db.session.scalar(query) or 0
    db.session.commit()
    return found


def _subjects(smtp_server, emails: list[str]) -> dict[str, Counter]:
    return {e: Counter(str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"]).split()[0]
                       for raw in smtp_server.received.get(e, [])) for e in emails}


def test_sigkill_of_the_transactional_worker_mid_automation(app, platform_env, smtp_server):
    env = {**platform_env, **KILL_ENV}
    with app.app_context():
        settings.save({"NOTIFY_RATE": "60"}, None)  # the sends spread over several seconds: a kill lands mid-way
        try:
            _run(env, smtp_server)
        finally:
            settings.save({"NOTIFY_RATE": None}, None)


def _run(env: dict[str, str], smtp_server) -> None:
    with celery_worker(env, queues="bulk,default", concurrency=2, name="survivor"), celery_beat(env), \
            celery_worker(env, queues="transactional", concurrency=2, name="victim") as (victim, _):
        automation_id, emails = _enter(N)
        # Mid-way: some first emails delivered, and the victim holding claimed rows.
        wait_for(lambda: smtp_server.count() >= N // 3 and _held_by("victim-%"), 120, interval=0.02,
                 message="the victim sending automation emails")
        os.killpg(victim.pid, signal.SIGKILL)  # the main process and its pool, at once
        since = time.monotonic()
        victim.wait()
        time.sleep(0.2)
        orphaned = _held_by("victim-%")
        delivered_at_kill = smtp_server.count()
        assert orphaned, "the victim held no claimed rows when it was killed: nothing was tested"
        assert delivered_at_kill < 2 * N, "everything was sent before the kill: nothing was tested"
        with celery_worker(env, queues="transactional", concurrency=2, name="rescuer"):
            wait_for(lambda: _count(select(func.count()).select_from(Enrollment).where(
                Enrollment.automation_id == automation_id, Enrollment.state == EnrollmentState.COMPLETED)) == N,
                CLAIM_TIMEOUT - 20, interval=0.2, message="every enrollment to complete")
            wait_for(lambda: _count(select(func.count()).select_from(Notification).where(
                Notification.kind == NotificationKind.AUTOMATION, Notification.status == NotificationStatus.SENT))
                     == 2 * N, CLAIM_TIMEOUT - 20, interval=0.2, message="every automation email sent")
            finished = time.monotonic() - since
            time.sleep(2)  # a few more sweeps and runs: nothing more may arrive
    assert _held_by("victim-%") == []
    subjects = _subjects(smtp_server, emails)
    wrong = {e: dict(found) for e, found in subjects.items() if found != Counter({"First": 1, "Second": 1})}
    assert (len(wrong), dict(list(wrong.items())[:5])) == (0, {})
    assert _count(select(func.count()).select_from(Notification).where(
        Notification.kind == NotificationKind.AUTOMATION)) == 2 * N  # one ledger row per step and enrollment
    print(f"\nautomation worker kill: {len(orphaned)} claimed rows orphaned with {delivered_at_kill} of {2 * N} "
          f"delivered; all {2 * N} sent once, every enrollment completed {finished:.1f} s after the kill")
