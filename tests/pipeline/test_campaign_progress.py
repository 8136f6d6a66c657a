"""The campaign page's progress keeps up with a real worker: "preparing" first, then counts that move
while a batch is still sending (a batch writes its outcomes every RECORD_EVERY seconds, not once at
its end), before and after a pause and resume."""
from __future__ import annotations

import time

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Delivery, DeliveryStatus
from newsletter.services.campaigns import campaigns
from newsletter.services.campaigns import send as campaign_send
from newsletter.services.delivery import send_log
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    resume,
    wait_until_status,
)
from tests.support.net import wait_for

D = DeliveryStatus
N = 90


def _part_written_claims(campaign_id: int) -> set[str]:
    """The batches (claim tokens) seen partly written: rows sent while others of them are still sending."""
    db.session.rollback()
    rows = db.session.execute(select(Delivery.claim, Delivery.status).where(
        Delivery.campaign_id == campaign_id, Delivery.claim.is_not(None))
        .group_by(Delivery.claim, Delivery.status)).all()
    db.session.commit()
    by_claim: dict[str, set] = {}
    for claim, status in rows:
        by_claim.setdefault(claim, set()).add(status)
    unsent = {D.SENDING, D.COMMITTING}
    return {claim for claim, statuses in by_claim.items() if D.SENT in statuses and statuses & unsent}


def _follow(client, url: str, campaign_id: int, until) -> tuple[set[int], set[str]]:
    """Poll the progress endpoint as the page does (faster): the sent counts seen mid-send, the part-written batches."""
    seen_sent: set[int] = set()
    part_written: set[str] = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        data = client.get(url).get_json()
        if data["status"] != "sending" or until(data):
            break
        if data["phase"] == "sending" and 0 < data["sent"] < N:
            seen_sent.add(data["sent"])
        part_written |= _part_written_claims(campaign_id)
        time.sleep(0.1)
    return seen_sent, part_written


def test_progress_says_preparing_then_moves_within_batches(ctx, admin_client, worker, beat, smtp_server, send_rate):
    send_rate(15)  # a batch of 25 (the tests' SEND_BATCH_SIZE) takes ~1.7 s: several writes each
    list_id, emails = make_audience(N, prefix="g")
    campaign_id = make_campaign([list_id])
    url = f"/admin/campaigns/{campaign_id}/progress.json"

    # Beat's sweep freezes the recipients of any campaign in `sending` whose snapshot lease is free (it
    # did so between the two reads below once in CI): the test holds that lease until it dispatches.
    lease = campaign_send.limiter().client
    lease_key = f"newsletter:campaign:{campaign_id}:snapshot"
    lease.set(lease_key, "held by the test", ex=120)
    campaigns.send_now(campaign_id)  # sending, nobody frozen yet: what the page shows before the dispatcher runs
    first = admin_client.get(url).get_json()
    assert (first["status"], first["phase"], first["recipients"], first["snapshot_done"]) == \
        ("sending", "preparing", 0, False)
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "preparing recipients…" in page and "0 %" not in page
    lease.delete(lease_key)

    ctx.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
    seen_sent, part_written = _follow(admin_client, url, campaign_id, lambda data: data["sent"] >= 40)
    # Written once per batch, the count could only ever read a multiple of 25 before the end.
    assert len(seen_sent) >= 3 and {n for n in seen_sent if n % 25}, seen_sent
    assert part_written, "no batch was ever seen partly written"

    campaigns.pause(campaign_id)
    wait_for(lambda: not set(ledger(campaign_id)) & {"queued", "sending", "committing"}, 60,
             message=f"every delivery handed back or sent ({ledger(campaign_id)})")
    before = admin_client.get(url).get_json()["sent"]
    resume(ctx, campaign_id)
    seen_sent, part_written_after = _follow(admin_client, url, campaign_id, lambda data: False)
    # After Resume, too, the count moves while the first batches are still sending.
    assert part_written_after - part_written, "no batch after the resume was seen partly written"
    assert {n for n in seen_sent if n > before and (n - before) % 25}, (before, seen_sent)

    wait_until_status(campaign_id, "sent")
    assert_exactly_once(smtp_server, emails)
    assert_totals_match_ledger(campaign_id)
    db.session.rollback()
    ids = db.session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign_id)).all()
    attempts = sum(len(send_log.detail(i)[2]) for i in ids)  # the histories, as the send log shows them
    assert attempts == N  # each outcome written once, however many writes its batch made (a pause costs none)
