"""Soak: a mailbox full of bounces (BOUNCE_SOAK_N, 2,000 in `make test`; bench/bounce_mailbox_bench.py
runs 10,000) drained by beat's poll on a real worker while a campaign sends: each bounce recorded
exactly once, each message filed once, each campaign message sent once. The time taken is
printed, not asserted (bench/README.md "Bounce mailbox" has the measured figures)."""
from __future__ import annotations

import json
import os
import time

import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Bounce, Subscriber, SubscriberStatus
from newsletter.services.deliverability import verp
from tests.pipeline.conftest import assert_exactly_once, make_audience, start_sending, wait_until_status
from tests.pipeline.test_bounce_mailbox_e2e import bounce_lane
from tests.services.test_bounce_mailbox import hard_dsn
from tests.services.test_bounces import sent_campaign
from tests.support.imap import DovecotServer
from tests.support.net import wait_for

N = int(os.environ.get("BOUNCE_SOAK_N", "2000"))
SENDING = max(1000, N // 2)  # the campaign that goes out meanwhile


@pytest.fixture
def imap_server():
    server = DovecotServer().start()
    yield server
    server.stop()


def _count(query) -> int:
    db.session.rollback()
    return db.session.scalar(query)


@pytest.mark.slow
@pytest.mark.timeout(max(300, N // 10))
def test_a_full_mailbox_is_drained_once_while_a_campaign_sends(ctx, worker, smtp_server, imap_server, platform_env):
    list_id, emails = make_audience(N, prefix="soak")
    campaign_id, deliveries = sent_campaign(list_id)  # an earlier campaign, all of it bounced back
    imap_server.deliver(*[hard_dsn(verp.return_path("d", deliveries[e]), e) for e in emails])
    sending_id, sending_emails = start_sending(ctx, SENDING, prefix="soaksend")

    def sent_so_far() -> int:
        return sum(1 for e in sending_emails if smtp_server.senders.get(e))

    with bounce_lane(platform_env, imap_server.url):
        started, sent_at_start = time.monotonic(), sent_so_far()  # the worker is up; beat's first tick is due
        wait_for(lambda: imap_server.folders().get("Processed", 0) >= N, max(120, N / 20), interval=0.5,
                 message=f"{N} bounces to be filed")
        elapsed, sent_at_end = time.monotonic() - started, sent_so_far()

    wait_until_status(sending_id, "sent", timeout=180)
    assert_exactly_once(smtp_server, sending_emails)
    assert imap_server.folders() == {"INBOX": 0, "Processed": N}
    rows = db.session.execute(select(Bounce.event_id, Bounce.delivery_id)).all()
    assert len(rows) == N and len({r.event_id for r in rows}) == N
    assert {r.delivery_id for r in rows} == set(deliveries.values())
    assert _count(select(func.count()).select_from(Subscriber).where(
        Subscriber.email.in_(emails), Subscriber.status == SubscriberStatus.BOUNCED)) == N
    print("\nbounce mailbox soak:", json.dumps({
        "messages": N, "pollers": int(platform_env.get("BOUNCE_POLL_PARALLEL", 2)),
        "seconds_to_drain": round(elapsed, 1), "per_second": round(N / elapsed, 1),
        "campaign_sent_when_drain_began": sent_at_start, "campaign_sent_when_drained": sent_at_end,
        "database": db.engine.dialect.name}))
