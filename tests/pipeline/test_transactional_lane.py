"""The transactional lane: a password reset never waits behind a big campaign."""
from __future__ import annotations

import statistics
import time

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Delivery, Notification, Role
from newsletter.services.accounts import api_keys
from newsletter.services.campaigns import campaigns
from tests.api.conftest import ApiClient
from tests.pipeline.conftest import ledger, start_sending, status_of
from tests.support.net import wait_for

NOTIFICATIONS = 20
DEADLINE = 2.0  # seconds from the POST to the message at the SMTP server (p95), as the issue asks


def test_notifications_are_delivered_within_2s_while_a_20000_recipient_campaign_sends(
        ctx, client, worker, transactional_worker, beat, smtp_server, send_rate):
    send_rate(20)  # the campaign crawls, keeping the bulk worker busy and its queue full
    campaign_id, _ = start_sending(ctx, 20_000, "big", smtp_server, first_sends=20)
    api = ApiClient(client, api_keys.create_api_key("lane test", Role.MARKETER)[1])
    try:
        latencies = []
        for i in range(NOTIFICATIONS):
            to = f"reset{i:02d}@example.com"
            began = time.monotonic()
            accepted = api.post("/api/v1/notifications", json={
                "to": to, "subject": "Reset your password", "text": "Your code: {{ code }}", "data": {"code": i}})
            assert accepted.status_code == 202, accepted.get_json()
            wait_for(lambda to=to: smtp_server.received.get(to), 30, 0.005, f"the notification to {to}")
            latencies.append(time.monotonic() - began)
        assert status_of(campaign_id) == "sending"  # the campaign really was sending all along
    finally:
        campaigns.cancel(campaign_id)
        wait_for(lambda: set(ledger(campaign_id)) <= {"sent", "cancelled"}, 60,
                 message=f"the campaign's deliveries to settle ({ledger(campaign_id)})")
        wait_for(lambda: status_of(campaign_id) != "sending", 30, message="the campaign to stop sending")

    p95 = statistics.quantiles(latencies, n=20, method="inclusive")[-1]
    print(f"\ntransactional latency under a 20,000-recipient campaign: p50 {statistics.median(latencies):.3f} s, "
          f"p95 {p95:.3f} s, max {max(latencies):.3f} s")
    assert p95 <= DEADLINE, sorted(latencies)

    # Each lane ran on its own workers: bulk work never occupied the transactional worker.
    db.session.rollback()
    tx_workers = set(db.session.scalars(select(Notification.worker)))
    bulk_workers = set(db.session.scalars(select(Delivery.worker).where(Delivery.campaign_id == campaign_id,
                                                                        Delivery.worker != "")))
    assert tx_workers and all(w.startswith("tx-") for w in tx_workers), tx_workers
    assert bulk_workers and all(w.startswith("bulk-") for w in bulk_workers), bulk_workers
    assert all(len(smtp_server.received[f"reset{i:02d}@example.com"]) == 1 for i in range(NOTIFICATIONS))
