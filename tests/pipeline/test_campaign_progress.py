"""The campaign page's progress keeps up with a real worker: "preparing" first, then counts that move
while a batch is still sending (a batch writes its outcomes every RECORD_EVERY seconds, not once at its end)."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Delivery, DeliveryStatus
from newsletter.models.delivery_attempt import DeliveryAttempt
from newsletter.services.campaigns import campaigns
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    make_audience,
    make_campaign,
    status_of,
    wait_until_status,
)

D = DeliveryStatus


def _claims_part_written(campaign_id: int) -> bool:
    """Is some batch (one claim token) partly written: rows sent while others of it still sending?"""
    db.session.rollback()
    rows = db.session.execute(select(Delivery.claim, Delivery.status, func.count()).where(
        Delivery.campaign_id == campaign_id, Delivery.claim.is_not(None))
        .group_by(Delivery.claim, Delivery.status)).all()
    db.session.commit()
    by_claim: dict[str, set] = {}
    for claim, status, _ in rows:
        by_claim.setdefault(claim, set()).add(status)
    return any(D.SENT in statuses and statuses & {D.SENDING, D.COMMITTING} for statuses in by_claim.values())


def test_progress_says_preparing_then_moves_within_batches(ctx, admin_client, worker, beat, smtp_server, send_rate):
    send_rate(15)  # a batch of 25 (the tests' SEND_BATCH_SIZE) takes ~1.7 s: several writes each
    list_id, emails = make_audience(60, prefix="g")
    campaign_id = make_campaign([list_id])
    url = f"/admin/campaigns/{campaign_id}/progress.json"

    campaigns.send_now(campaign_id)  # sending, nobody frozen yet: what the page shows before the dispatcher runs
    first = admin_client.get(url).get_json()
    assert (first["status"], first["phase"], first["recipients"], first["snapshot_done"]) == \
        ("sending", "preparing", 0, False)
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "preparing recipients…" in page and "0 %" not in page

    ctx.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
    seen_sent: set[int] = set()
    part_written = False
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        data = admin_client.get(url).get_json()
        if data["status"] != "sending":
            break
        if data["phase"] == "sending" and 0 < data["sent"] < 60:
            seen_sent.add(data["sent"])
        part_written = part_written or _claims_part_written(campaign_id)
        time.sleep(0.1)
    wait_until_status(campaign_id, "sent")
    # Written once per batch, the count could only ever read 25 or 50 before the end.
    assert len(seen_sent) >= 3 and seen_sent - {25, 50}, seen_sent
    assert part_written, "no batch was ever seen partly written"
    assert status_of(campaign_id) == "sent"
    assert_exactly_once(smtp_server, emails)
    assert_totals_match_ledger(campaign_id)
    db.session.rollback()
    attempts = db.session.scalar(select(func.count()).select_from(DeliveryAttempt).join(
        Delivery, Delivery.id == DeliveryAttempt.delivery_id).where(Delivery.campaign_id == campaign_id))
    assert attempts == 60  # each outcome written once, however many writes its batch made
