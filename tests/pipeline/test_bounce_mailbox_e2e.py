"""End to end: a campaign goes out with VERP return paths (BOUNCE_ADDRESS), a remote server's DSN
comes back to the envelope sender it was given, lands in a real IMAP mailbox, and beat's poll on
a real worker turns it into a bounced subscriber and a campaign total."""
from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.config import celery_redis_url
from newsletter.devserver.embedded_redis import EmbeddedRedis
from newsletter.extensions import db
from newsletter.models import Campaign, Subscriber, SubscriberStatus
from tests.pipeline.conftest import start_sending, wait_until_status
from tests.services.test_bounce_mailbox import complaint, hard_dsn
from tests.support.imap import DovecotServer
from tests.support.net import wait_for
from tests.support.processes import celery_beat, celery_worker

# Only the mailbox poll runs on the bounce lane's beat; the session's workers do the sending.
QUIET = {"SWEEP_INTERVAL": "3600", "SCHEDULER_INTERVAL": "3600", "WEBHOOK_POLL_INTERVAL": "3600",
         "ENGAGEMENT_FLUSH_INTERVAL": "3600"}


@contextmanager
def bounce_lane(platform_env: dict[str, str], mailbox_url: str) -> Iterator[None]:
    """A worker and beat that poll `mailbox_url` every second. Their broker is a Redis of their own,
    so that the session's workers (started without BOUNCE_MAILBOX_URL) never take the poll."""
    broker = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="nl-bl-")) / "redis").start()
    env = {**platform_env, **QUIET, "BOUNCE_MAILBOX_URL": mailbox_url, "BOUNCE_POLL_INTERVAL": "1",
           "CELERY_BROKER_URL": celery_redis_url(broker.url), "CELERY_RESULT_BACKEND": celery_redis_url(broker.url)}
    try:
        # A process per poller: BOUNCE_POLL_PARALLEL (default 2) of them work the mailbox side by side.
        pollers = int(platform_env.get("BOUNCE_POLL_PARALLEL", 2))
        with celery_worker(env, queues="default", concurrency=pollers, name="bounces"), celery_beat(env):
            yield
    finally:
        broker.stop()


@pytest.fixture
def imap_server():
    server = DovecotServer().start()
    yield server
    server.stop()


def status_of(email: str) -> SubscriberStatus:
    db.session.rollback()
    return db.session.scalars(select(Subscriber.status).where(Subscriber.email == email)).one()


def totals(campaign_id: int) -> tuple[int, int]:
    db.session.rollback()
    campaign = db.session.get(Campaign, campaign_id)
    db.session.refresh(campaign)
    return campaign.bounced, campaign.complained


@pytest.mark.slow
def test_a_dsn_to_the_verp_address_bounces_the_subscriber(ctx, worker, smtp_server, imap_server, platform_env):
    campaign_id, emails = start_sending(ctx, 3, prefix="e2ebounce")
    wait_until_status(campaign_id, "sent")
    hard, complainer, kept = emails
    # The envelope senders the SMTP server was given, as a remote server would bounce to them.
    return_paths = {e: smtp_server.senders[e][0] for e in emails}
    assert all(rp.startswith("bounces+d") and rp.endswith("@example.org") for rp in return_paths.values())
    assert len(set(return_paths.values())) == 3

    with bounce_lane(platform_env, imap_server.url):
        imap_server.deliver(hard_dsn(return_paths[hard], hard), complaint(return_paths[complainer], complainer))
        wait_for(lambda: imap_server.folders().get("Processed") == 2, 60, interval=0.25,
                 message="the poller to file both reports")

    assert status_of(hard) == SubscriberStatus.BOUNCED
    assert status_of(complainer) == SubscriberStatus.COMPLAINED
    assert status_of(kept) == SubscriberStatus.CONFIRMED
    assert totals(campaign_id) == (1, 1)
    assert imap_server.folders() == {"INBOX": 0, "Processed": 2}
