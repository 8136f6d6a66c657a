"""Campaign orchestration: dispatch, publish windows, the chord callback's work, the sweep, finishing.

A window is up to SEND_WINDOW due deliveries (fresh rows past the campaign's cursor, which
moves past them in one campaign write; retries moved to `queued`) published as one chord of
send batches (SEND_BATCH_SIZE each) whose callback is `window_done`. Services never enqueue:
the caller (tasks/campaigns.py) passes a `Publisher` that puts one window on the broker. A
callable rather than a returned list, because `dispatch` must publish its first windows
before it freezes the rest of the recipients: the first email does not wait for the snapshot.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from ...models.base import utcnow
from ..delivery import leases, ledger
from ..webhooks import webhooks
from . import campaigns, send
from .status import transition
from .totals import add_to_totals, record_totals

S = CampaignStatus
D = DeliveryStatus
IN_FLIGHT_WINDOWS = 2  # one window sending while the next waits in the queue: workers never idle

Publisher = Callable[[int, list[list[int]]], None]
"""Publishes one window: (campaign id, its batches of delivery ids) as a chord of send batches."""


def publish_windows(campaign_id: int, windows: int, publish: Publisher) -> int:
    """Publish up to `windows` windows of due pending deliveries, each a chord of batches.

    The cursor moves (committed) before the messages are published, so a publisher that
    dies in between leaves rows the sweeper republishes once the cursor has not moved for
    SEND_QUEUED_TIMEOUT, never lost ones.
    """
    size, window = current_app.config["SEND_BATCH_SIZE"], current_app.config["SEND_WINDOW"]
    published = 0
    for _ in range(windows):
        ids = ledger.publish(campaign_id, window)
        if not ids:
            break
        publish(campaign_id, [ids[i:i + size] for i in range(0, len(ids), size)])
        published += len(ids)
    return published


def dispatch(campaign_id: int, publish: Publisher) -> int:
    """Snapshot the recipients (once) and start the first windows; safe to run twice.

    The windows start after the first chunks of the snapshot, not after all of it: at
    1,000,000 recipients the whole snapshot takes ~20 s that the first email no longer waits.
    The first chunk is small (SEND_FIRST_WINDOW recipients) and goes out at once as a small
    first window; the second window follows the next (full) chunk. If the first window was
    done before that chunk was (its callback found nothing to publish), both start then.
    """
    if not send.prepare(campaign_id, first_chunk_only=True):
        return 0
    published = publish_windows(campaign_id, 1, publish)  # the first recipients start now
    send.prepare(campaign_id, first_chunk_only=True)  # the next chunk: the second window's rows
    first_live = 1 if published and ledger.in_flight(campaign_id) else 0
    published += publish_windows(campaign_id, IN_FLIGHT_WINDOWS - first_live, publish)
    send.prepare(campaign_id)  # and the rest are frozen while they send
    # Windows that finished before the last chunk was frozen published nothing more: go on here.
    if not ledger.in_flight(campaign_id):
        more = publish_windows(campaign_id, IN_FLIGHT_WINDOWS, publish)
        published += more
        if not more:
            finish_if_done(campaign_id)  # nobody to send to, or everything already done
    return published


def window_done(results: list, campaign_id: int, publish: Publisher) -> dict:
    """A window's chord finished: add its counts to the totals, keep the pipeline full, finish.

    The last callback recounts the totals from the ledger (`finish_if_done`), so what the
    campaign finally shows always equals the Delivery table.
    """
    window = {key: sum(int((r or {}).get(key, 0)) for r in results or []) for key in ("sent", "failed")}
    status = campaigns.get(campaign_id).status
    if status == S.SENDING:
        add_to_totals(campaign_id, window["sent"], window["failed"])
        publish_windows(campaign_id, 1, publish)
        finish_if_done(campaign_id)
    elif status in (S.PAUSED, S.CANCELLED):
        record_totals(campaign_id)  # the batches that were in flight when it stopped
    return window


def sweep(publish: Publisher) -> dict:
    """Recover rows whose owner vanished, publish due retries, finish what is done (beat)."""
    config = current_app.config
    dead = leases.dead_claims(ledger.claims_in_flight())  # workers that stopped renewing their lease
    orphans, live = leases.registered_rows()  # the rows their batches had not fenced yet; the live ones'
    recovered = ledger.recover_stale(config["SEND_CLAIM_TIMEOUT"], config["SEND_QUEUED_TIMEOUT"], dead_claims=dead,
                                     orphaned=[i for ids in orphans.values() for i in ids], live=live)
    if "locked" not in recovered:  # committed: the registrations have served
        leases.forget(orphans)
    for campaign_id in _with_status(S.CANCELLED, with_unsent=True):
        ledger.cancel_unsent(campaign_id)
        record_totals(campaign_id)
    for campaign_id in _with_status(S.SENDING):
        send.prepare(campaign_id)  # a dispatcher message lost before its snapshot
        if not ledger.in_flight(campaign_id):
            if ledger.has_due_pending(campaign_id):
                publish_windows(campaign_id, IN_FLIGHT_WINDOWS, publish)
            else:
                finish_if_done(campaign_id)
    return recovered


def finish_if_done(campaign_id: int) -> bool:
    """A sending campaign whose every delivery is terminal becomes sent, with exact totals
    counted from the ledger (once, at the end: counting every window would cost O(N²))."""
    if db.session.scalar(select(Campaign.snapshot_at).where(Campaign.id == campaign_id)) is None:
        db.session.commit()
        return False  # recipients are still being frozen: more rows are coming
    if ledger.unfinished(campaign_id):
        return False
    by_status = ledger.counts(campaign_id)
    now = utcnow()
    totals: dict[str, Any] = dict(recipients=sum(by_status.values()), sent=by_status["sent"],
                                  failed=by_status["failed"], cancelled=by_status["cancelled"])
    # Totals and status in one UPDATE: a late chord callback's increment cannot slip between.
    # Its campaign.finished event commits with it, and only when this call made the move.
    moved = transition(campaign_id, S.SENT, finished_at=now, totals_at=now, commit=False, **totals)
    if moved:
        name = db.session.scalar(select(Campaign.name).where(Campaign.id == campaign_id))
        webhooks.emit("campaign.finished", {"campaign_id": campaign_id, "name": name, "finished_at": now, **totals})
    db.session.commit()
    return moved


def _with_status(status: CampaignStatus, with_unsent: bool = False) -> list[int]:
    query = select(Campaign.id).where(Campaign.status == status)
    if with_unsent:
        query = query.where(select(Delivery.id).where(
            Delivery.campaign_id == Campaign.id, Delivery.status.in_([D.PENDING, D.QUEUED])).exists())
    ids = list(db.session.scalars(query))
    db.session.commit()
    return ids
