"""The automation entry bench (bench/automation_bench.py runs it): N subscribers enter a welcome
automation at once (one bulk add to its list) while a campaign sends. Skipped unless
AUTOMATION_BENCH_N is set.

The processes are the Procfile's, started here with its flags and the production send settings
(SEND_BATCH_SIZE 400, SEND_WINDOW 5000): a bulk worker (`bulk,default`, 4 processes, -O fair,
prefetch 1), a transactional worker (`transactional`, 2 processes: the automation runs too) and
beat, on the session's PostgreSQL, Redis and broker, sending into Postfix's smtp-sink.

The campaign is sent three times, interleaved: alone, during the entry, alone again. During the
entry an API notification (`POST /api/v1/notifications` through the app's WSGI stack, the test
client) is posted every PROBE_EVERY seconds until the last automation email is sent; its latency
is from the POST to its `sent_at` (the SMTP server's reply). Prints one line
`automation entry bench: {...}`. Exactly once: the sink received exactly as many messages as the
ledgers say were sent (3 campaigns + N automation emails + the probes), and every enrollment
completed with one email.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

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
    Role,
)
from newsletter.services import settings
from newsletter.services.accounts import api_keys
from newsletter.services.audience import subscribers
from newsletter.services.automations import automations
from tests.api.conftest import ApiClient
from tests.automations.conftest import confirmed_on_list
from tests.pipeline.conftest import make_audience, make_campaign, start, status_of
from tests.support.net import wait_for
from tests.support.processes import celery_beat, celery_worker

N = int(os.environ.get("AUTOMATION_BENCH_N") or 0)
CAMPAIGN = int(os.environ.get("AUTOMATION_BENCH_CAMPAIGN") or 20_000)
NOTIFY_RATE = os.environ.get("AUTOMATION_BENCH_NOTIFY_RATE") or "1000"
PROBE_EVERY = 1.0
# The Procfile's send settings (config.py defaults), not the test suite's scaled-down ones.
PRODUCTION = {"SEND_BATCH_SIZE": "400", "SEND_WINDOW": "5000", "WORKER_PREFETCH_MULTIPLIER": "4",
              "SEND_CLAIM_TIMEOUT": "300", "SEND_QUEUED_TIMEOUT": "900", "SEND_RETRY_BASE": "30",
              "SEND_RETRY_MAX": "1800", "SWEEP_INTERVAL": "15", "SCHEDULER_INTERVAL": "10", "LEASE_TTL": "30",
              "LEASE_RENEW_INTERVAL": "5", "AUTOMATION_INTERVAL": os.environ.get("AUTOMATION_BENCH_INTERVAL") or "1"}
BULK_FLAGS = ("-O", "fair", "--prefetch-multiplier", "1")

pytestmark = pytest.mark.skipif(not N, reason="the automation entry bench: set AUTOMATION_BENCH_N "
                                              "(bench/automation_bench.py)")


def _staging(n: int) -> int:
    """`n` confirmed subscribers on a staging list (not the automation's), inserted in bulk."""
    staging = MailingList(name="Staging", opt_in=OptIn.SINGLE)
    db.session.add(staging)
    db.session.flush()
    for first in range(0, n, 20_000):
        confirmed_on_list(staging.id, [f"auto{i:06d}@example.net" for i in range(first, min(n, first + 20_000))],
                          "Auto")
    db.session.commit()
    return staging.id


def _count(query) -> int:
    db.session.rollback()
    return db.session.scalar(query) or 0


def _automation_mail(status: NotificationStatus | None = None):
    query = select(func.count()).select_from(Notification).where(Notification.kind == NotificationKind.AUTOMATION)
    return query.where(Notification.status == status) if status else query


def _send_campaign(app, list_id: int, during=None) -> dict:
    campaign_id = make_campaign([list_id])
    t0 = time.monotonic()
    start(app, campaign_id)
    extra = during() if during else {}
    wait_for(lambda: db.session.rollback() or status_of(campaign_id) == "sent", 3600, interval=0.25,
             message=f"campaign {campaign_id} to be sent")
    elapsed = time.monotonic() - t0
    return {"s": round(elapsed, 2), "msgs_per_s": round(CAMPAIGN / elapsed, 1), "load_average": os.getloadavg(),
            **extra}


class Probes(threading.Thread):
    """POST /api/v1/notifications every PROBE_EVERY s until stopped: (id, when posted) each."""

    def __init__(self, app, key: str) -> None:
        super().__init__(daemon=True)
        self.api = ApiClient(app.test_client(), key)
        self.posted: list[tuple[int, dt.datetime]] = []
        self.refused: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.wait(PROBE_EVERY):
            posted = dt.datetime.now(dt.UTC)
            answer = self.api.post("/api/v1/notifications", json={
                "to": f"probe{i:04d}@example.org", "subject": "Your code", "text": "Code {{ code }}",
                "data": {"code": i}})
            if answer.status_code == 202:
                self.posted.append((answer.get_json()["id"], posted))
            else:
                self.refused.append(answer.status_code)
            i += 1


class Timeline(threading.Thread):
    """Every half second from the bulk add on: (s since, events left, enrolled, automation emails sent)."""

    def __init__(self, app, automation_id: int) -> None:
        super().__init__(daemon=True)
        self.app, self.automation_id = app, automation_id
        self.samples: list[tuple[float, int, int, int]] = []
        self.t0 = time.monotonic()
        self.stop = threading.Event()

    def run(self) -> None:
        with self.app.app_context():
            while not self.stop.wait(0.5):
                self.samples.append((round(time.monotonic() - self.t0, 2),
                                     _count(select(func.count()).select_from(AutomationEvent)
                                            .where(AutomationEvent.processed.is_(False))),
                                     _count(select(func.count()).select_from(Enrollment)
                                            .where(Enrollment.automation_id == self.automation_id)),
                                     _count(_automation_mail(NotificationStatus.SENT))))
            db.session.remove()

    def first(self, test) -> float | None:
        return next((t for t, *counts in self.samples if test(*counts)), None)


def _latencies(posted: list[tuple[int, dt.datetime]]) -> list[float]:
    db.session.rollback()
    sent = dict(db.session.execute(select(Notification.id, Notification.sent_at).where(
        Notification.id.in_([i for i, _ in posted]))).all())
    return sorted((sent[i] - at).total_seconds() for i, at in posted if sent.get(i) is not None)


@pytest.mark.timeout(7200)
def test_entry_while_a_campaign_sends(app, platform_env, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from procs import Children  # bench/: smtp-sink, as every send bench uses it
    from sink import Sink

    children = Children()
    sink = Sink(children, tmp_path, "automation")
    env = {**platform_env, **PRODUCTION, "MAIL_PORT": str(sink.port)}
    try:
        with app.app_context():
            settings.save({"SEND_RATE": "100000", "NOTIFY_RATE": NOTIFY_RATE}, None)
            try:
                with celery_worker(env, queues="bulk,default", concurrency=4, name="bulk", options=BULK_FLAGS), \
                        celery_worker(env, queues="transactional", concurrency=2, name="tx"), celery_beat(env):
                    result = _run(app, sink)
            finally:
                settings.save({"SEND_RATE": None, "NOTIFY_RATE": None}, None)
    finally:
        sink.stop()
    print("automation entry bench: " + json.dumps(result))
    assert result["sink_received"] == result["ledger_sent"], "a message was sent twice, or lost"
    assert result["completed"] == N and result["automation_sent"] == N


def _run(app, sink) -> dict:
    lists = [make_audience(CAMPAIGN, prefix=prefix)[0] for prefix in ("a", "b", "c")]
    staging = _staging(N)
    welcome = MailingList(name="Welcome", opt_in=OptIn.SINGLE)
    db.session.add(welcome)
    db.session.commit()
    automation = automations.create("Welcome", "subscribed", str(welcome.id),
                                    [{"kind": "send", "params": {"subject": "Welcome {{ subscriber.name }}",
                                                                 "html": "<p>Hello {{ subscriber.email }}</p>"}}])
    automations.set_status(automation.id, "active")
    _, key = api_keys.create_api_key("bench probes", Role.MARKETER)
    probes = Probes(app, key)
    marks: dict[str, float] = {}

    timeline = Timeline(app, automation.id)

    def enter() -> dict:
        marks["t0"] = timeline.t0 = time.monotonic()
        timeline.start()
        added = subscribers.bulk_add_to_list(welcome.id, filters=subscribers.make_filters(list_id=staging))
        marks["entered"] = time.monotonic()
        probes.start()
        return {"bulk_add_s": round(marks["entered"] - marks["t0"], 2), "added": added}

    alone_before = _send_campaign(app, lists[0])
    print("campaign alone:", alone_before, flush=True)
    during = _send_campaign(app, lists[1], during=enter)
    print("campaign during the entry:", during, flush=True)
    enrolled_at = wait_for(lambda: _count(select(func.count()).select_from(AutomationEvent)
                                          .where(AutomationEvent.processed.is_(False))) == 0 and time.monotonic(),
                           3600, interval=0.5, message="every event processed")
    done_at = wait_for(lambda: _count(_automation_mail(NotificationStatus.SENT)) >= N and time.monotonic(),
                       7200, interval=0.5, message="every automation email sent")
    load_at_done = os.getloadavg()
    probes.stop.set()
    timeline.stop.set()
    probes.join()
    timeline.join()
    alone_after = _send_campaign(app, lists[2])
    print("campaign alone again:", alone_after, flush=True)
    wait_for(lambda: _count(select(func.count()).select_from(Notification).where(
        Notification.status.in_([NotificationStatus.QUEUED, NotificationStatus.SENDING]))) == 0, 120,
        message="the last probes sent")
    db.session.rollback()
    first, last = db.session.execute(select(func.min(Notification.sent_at), func.max(Notification.sent_at)).where(
        Notification.kind == NotificationKind.AUTOMATION)).one()
    latencies = _latencies(probes.posted)
    alone_mean = (alone_before["msgs_per_s"] + alone_after["msgs_per_s"]) / 2
    ledger_sent = 3 * CAMPAIGN + _count(select(func.count()).select_from(Notification).where(
        Notification.status == NotificationStatus.SENT))
    return {
        "n": N, "campaign_n": CAMPAIGN, "notify_rate": float(NOTIFY_RATE), "settings": PRODUCTION,
        "campaign_alone_before": alone_before, "campaign_during": during, "campaign_alone_after": alone_after,
        "campaign_during_over_alone": round(during["msgs_per_s"] / alone_mean, 3),
        "enrolled_s": timeline.first(lambda left, enrolled, sent: enrolled >= N),
        "first_email_s": timeline.first(lambda left, enrolled, sent: sent > 0),
        "events_processed_by_s": round(enrolled_at - marks["t0"], 2),  # an upper bound: read after the campaign
        "automation_all_sent_s": round(done_at - marks["t0"], 2),
        "automation_msgs_per_s_overall": round(N / (done_at - marks["t0"]), 1),
        "automation_msgs_per_s_first_to_last": round(N / max(0.001, (last - first).total_seconds()), 1),
        "load_average_when_all_sent": load_at_done,
        "probes": len(probes.posted), "probes_refused": probes.refused,
        "probe_s_p50": round(statistics.median(latencies), 3) if latencies else None,
        "probe_s_p95": round(statistics.quantiles(latencies, n=20, method="inclusive")[-1], 3)
        if len(latencies) > 1 else None,
        "probe_s_max": round(max(latencies), 3) if latencies else None,
        "completed": _count(select(func.count()).select_from(Enrollment).where(
            Enrollment.state == EnrollmentState.COMPLETED)),
        "automation_sent": _count(_automation_mail(NotificationStatus.SENT)),
        "automation_emails": _count(_automation_mail()),
        "ledger_sent": ledger_sent, "sink_received": sink.settle(ledger_sent, timeout=30),
        "timeline_s_events_left_enrolled_sent": timeline.samples[::10],  # every 5 s
    }
