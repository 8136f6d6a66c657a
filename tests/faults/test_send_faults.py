"""Campaigns that survive crashes: each test ends with exactly one email per recipient,
totals equal to the ledger, and the campaign `sent`. Every test is bounded in time."""
from __future__ import annotations

import os
import random
import signal
import time

import pytest
from sqlalchemy import text

from newsletter.extensions import db
from newsletter.services.campaigns import recipients
from newsletter.services.delivery import ledger as deliveries
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    make_audience,
    make_campaign,
    start_sending,
    wait_until_status,
)
from tests.support.processes import celery_worker

pytestmark = pytest.mark.timeout(240)


def finished_exactly_once(campaign_id: int, smtp_server, emails: list[str], timeout: float = 120) -> None:
    wait_until_status(campaign_id, "sent", timeout=timeout)
    assert_exactly_once(smtp_server, emails)
    campaign = assert_totals_match_ledger(campaign_id)
    assert campaign.sent == len(emails)


def test_sigkill_a_worker_at_random_points_three_times(ctx, platform_env, worker, beat, smtp_server, send_rate):
    send_rate(150)
    campaign_id, emails = start_sending(ctx, 2000, "k")
    rng = random.Random()
    for _ in range(3):
        with celery_worker(platform_env, queues="bulk,default", concurrency=2) as (process, log):
            time.sleep(rng.uniform(0.5, 2.5))  # the point: a kill at a random moment of the sending
            os.killpg(process.pid, signal.SIGKILL)  # the worker and its pool children, mid-batch
            process.wait()
    finished_exactly_once(campaign_id, smtp_server, emails)


def test_the_broker_loses_its_queue_mid_campaign(ctx, worker, beat, smtp_server, send_rate):
    send_rate(150)
    campaign_id, emails = start_sending(ctx, 1000, "q", smtp_server, first_sends=150)
    purged = ctx.extensions["celery"].control.purge()  # what a Redis restart without persistence does
    assert purged > 0
    finished_exactly_once(campaign_id, smtp_server, emails)


def test_the_smtp_server_down_for_a_while_then_back(ctx, worker, beat, smtp_server, send_rate):
    send_rate(150)
    campaign_id, emails = start_sending(ctx, 600, "d", smtp_server, first_sends=100)
    smtp_server.server.stop()
    try:
        time.sleep(8)  # the point: an outage long enough for several retries to meet it
        db.session.rollback()
        assert deliveries.counts(campaign_id)["failed"] == 0  # an outage is nobody's permanent failure
    finally:
        smtp_server.server.restart()
    finished_exactly_once(campaign_id, smtp_server, emails)


def test_the_same_batch_message_delivered_twice(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(200, prefix="w")
    campaign_id = make_campaign([list_id])
    from newsletter.services.campaigns import campaigns

    campaigns.send_now(campaign_id)
    recipients.snapshot(campaign_id)
    ids = deliveries.publish(campaign_id, 1000)
    celery_app = ctx.extensions["celery"]
    for _ in range(2):  # the same message twice, as a broker redelivery would
        for i in range(0, len(ids), 50):
            celery_app.send_task("newsletter.tasks.bulk.send_batch", args=[campaign_id, ids[i:i + 50]])
    finished_exactly_once(campaign_id, smtp_server, emails)  # no chord here: the sweeper finishes it


def test_the_database_connection_dropped_under_the_workers(ctx, worker, beat, smtp_server, send_rate):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("pg_terminate_backend needs PostgreSQL (run with DATABASE_URL=postgresql://...)")
    send_rate(150)
    campaign_id, emails = start_sending(ctx, 800, "b", smtp_server, first_sends=100)
    from tests.pipeline.conftest import ledger, status_of
    from tests.support.net import wait_for

    for _ in range(2):
        killed = db.session.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        db.session.commit()
        assert killed > 0
        # Before the next drop, the workers are back: a send recorded on a new connection (or all done).
        recorded = ledger(campaign_id).get("sent", 0)
        wait_for(lambda recorded=recorded: ledger(campaign_id).get("sent", 0) > recorded
                 or status_of(campaign_id) == "sent", 90,
                 message="a send recorded after the dropped connections")
    finished_exactly_once(campaign_id, smtp_server, emails)
