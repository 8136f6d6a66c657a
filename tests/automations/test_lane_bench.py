"""The transactional lane's rate for automation email, one email per task (`send_notification`,
the one-by-one path) against chunks of AUTOMATION_SEND_CHUNK per task (`send_notifications`,
services/notifications/chunks.py), alternating in one run on a real transactional worker.
Skipped unless AUTOMATION_LANE_BENCH is set (the number of emails per round, e.g. 1000); prints
one `automation lane bench: {...}` line (bench/README.md "Automation entry").

AUTOMATION_LANE_SINK=1: the transactional worker is started here (the Procfile's: 2 processes)
sending into Postfix's smtp-sink, as the send benches do; without it the session's worker sends
into the tests' in-process aiosmtpd, whose replies then are most of what is measured.
"""
from __future__ import annotations

import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from newsletter.extensions import db
from newsletter.models import Notification, NotificationKind, NotificationStatus, Subscriber, SubscriberStatus
from newsletter.models.base import utcnow
from newsletter.services import settings
from newsletter.services.notifications import one_off
from newsletter.tasks import enqueue
from newsletter.tasks.notifications import send_notification, send_notifications
from tests.support.net import wait_for
from tests.support.processes import celery_worker

M = int(os.environ.get("AUTOMATION_LANE_BENCH") or 0)
SINK = bool(os.environ.get("AUTOMATION_LANE_SINK"))
CHUNK = int(os.environ.get("AUTOMATION_LANE_CHUNK") or 20)

pytestmark = pytest.mark.skipif(not M, reason="the automation lane bench: set AUTOMATION_LANE_BENCH")


def _queue(tag: str) -> list[int]:
    """`M` confirmed subscribers and one queued automation email each (committed)."""
    now = utcnow()
    emails = [f"{tag}-{i}@example.net" for i in range(M)]
    db.session.execute(insert(Subscriber), [
        {"email": e, "name": "Lane", "attributes": {}, "status": SubscriberStatus.CONFIRMED,
         "created_at": now, "updated_at": now, "confirmed_at": now} for e in emails])
    ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(emails))).all())
    queued = [one_off.queue(NotificationKind.AUTOMATION, e, "Lane", "<p>Hi</p>", "Hi", subscriber_id=ids[e],
                            commit=False) for e in emails]
    db.session.commit()
    return queued


def _sent() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.status == NotificationStatus.SENT)) or 0


@pytest.mark.timeout(3600)
def test_lane_rate_one_per_task_and_in_chunks(app, platform_env, tmp_path, request):
    with ExitStack() as stack:
        if SINK:
            sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
            from procs import Children  # bench/: smtp-sink, as every send bench uses it
            from sink import Sink

            sink = Sink(Children(), tmp_path, "lane")
            stack.callback(sink.stop)
            stack.enter_context(celery_worker({**platform_env, "MAIL_PORT": str(sink.port)}, queues="transactional",
                                              concurrency=2, name="tx"))
            received = sink.count
        else:
            request.getfixturevalue("transactional_worker")
            received = request.getfixturevalue("smtp_server").count
        rounds = _rounds(app)
        assert received() >= 4 * M
    print("automation lane bench: " + json.dumps({"chunk": CHUNK, "receiver": "smtp-sink" if SINK else "aiosmtpd",
                                                  "rounds": rounds}))


def _rounds(app) -> list[dict]:
    rounds: list[dict] = []
    with app.app_context():
        settings.save({"NOTIFY_RATE": "100000"}, None)
        try:
            for number, mode in enumerate(("single", "chunk", "single", "chunk")):
                ids = _queue(f"{mode}{number}")
                before, t0 = _sent(), time.monotonic()
                if mode == "single":
                    for notification_id in ids:
                        enqueue(send_notification, notification_id)
                else:
                    for first in range(0, M, CHUNK):
                        enqueue(send_notifications, ids[first:first + CHUNK])
                wait_for(lambda before=before: _sent() - before >= M, 1800, interval=0.2, message="the round sent")
                elapsed = time.monotonic() - t0
                rounds.append({"mode": mode, "emails": M, "s": round(elapsed, 2), "msgs_per_s": round(M / elapsed, 1),
                               "load_average": os.getloadavg()})
        finally:
            settings.save({"NOTIFY_RATE": None}, None)
    return rounds
