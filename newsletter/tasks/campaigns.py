"""Campaign orchestration (default queue): dispatch, publish windows, chord totals, recovery, schedule."""
from __future__ import annotations

from celery import chord, group, shared_task
from flask import current_app

from ..services.campaigns import send as campaign_send, campaigns
from ..services.delivery import ledger as deliveries

SEND_BATCH = "newsletter.tasks.bulk.send_batch"
WINDOW_DONE = "newsletter.tasks.campaigns.window_done"
IN_FLIGHT_WINDOWS = 2  # one window sending while the next waits in the queue: workers never idle


def publish_windows(campaign_id: int, windows: int) -> int:
    """Publish up to `windows` windows of due pending deliveries, each a chord of batches.

    The rows move to `queued` (committed) before their messages are published, so a
    publisher that dies in between leaves rows the sweeper republishes, never lost ones.
    """
    celery_app = current_app.extensions["celery"]
    size, window = current_app.config["SEND_BATCH_SIZE"], current_app.config["SEND_WINDOW"]
    published = 0
    for _ in range(windows):
        ids = deliveries.publish(campaign_id, window)
        if not ids:
            break
        header = group(celery_app.signature(SEND_BATCH, args=(campaign_id, ids[i:i + size]))
                       for i in range(0, len(ids), size))
        chord(header, app=celery_app)(celery_app.signature(WINDOW_DONE, args=(campaign_id,)))
        published += len(ids)
    return published


@shared_task(name="newsletter.tasks.campaigns.dispatch_campaign")
def dispatch_campaign(campaign_id: int) -> int:
    """Snapshot the recipients (once) and start the first windows; safe to run twice.

    The windows start after the first chunk of the snapshot, not after all of it: at
    1,000,000 recipients the whole snapshot takes ~20 s that the first email no longer waits.
    """
    campaign_id = int(campaign_id)
    if not campaign_send.prepare(campaign_id, first_chunk_only=True):
        return 0
    published = publish_windows(campaign_id, IN_FLIGHT_WINDOWS)  # the first recipients start now
    campaign_send.prepare(campaign_id)  # and the rest are frozen while they send
    # Windows that finished before the last chunk was frozen published nothing more: go on here.
    if not deliveries.in_flight(campaign_id):
        more = publish_windows(campaign_id, IN_FLIGHT_WINDOWS)
        published += more
        if not more:
            deliveries.finish_if_done(campaign_id)  # nobody to send to, or everything already done
    return published


@shared_task(name="newsletter.tasks.campaigns.window_done")
def window_done(results: list, campaign_id: int) -> dict:
    """Chord callback: add the window's counts to the totals, keep the pipeline full, finish.

    The last callback recounts the totals from the ledger (`finish_if_done`), so what the
    campaign finally shows always equals the Delivery table.
    """
    campaign_id = int(campaign_id)
    window = {key: sum(int((r or {}).get(key, 0)) for r in results or []) for key in ("sent", "failed")}
    status = campaigns.get(campaign_id).status.value
    if status == "sending":
        deliveries.add_to_totals(campaign_id, window["sent"], window["failed"])
        publish_windows(campaign_id, 1)
        deliveries.finish_if_done(campaign_id)
    elif status in ("paused", "cancelled"):
        deliveries.record_totals(campaign_id)  # the batches that were in flight when it stopped
    return window


@shared_task(name="newsletter.tasks.campaigns.sweep")
def sweep() -> dict:
    """Beat: recover rows whose owner vanished, publish due retries, finish what is done."""
    config = current_app.config
    recovered = deliveries.recover_stale(config["SEND_CLAIM_TIMEOUT"], config["SEND_QUEUED_TIMEOUT"])
    for campaign_id in deliveries.campaigns_with_status("cancelled", with_unsent=True):
        deliveries.cancel_unsent(campaign_id)
        deliveries.record_totals(campaign_id)
    for campaign_id in deliveries.campaigns_with_status("sending"):
        campaign_send.prepare(campaign_id)  # a dispatcher message lost before its snapshot
        if not deliveries.in_flight(campaign_id):
            if deliveries.has_due_pending(campaign_id):
                publish_windows(campaign_id, IN_FLIGHT_WINDOWS)
            else:
                deliveries.finish_if_done(campaign_id)
    return recovered


@shared_task(name="newsletter.tasks.campaigns.start_scheduled")
def start_scheduled() -> list[int]:
    """Beat: scheduled campaigns whose time has come (read from the database, survives restarts)."""
    started = campaigns.start_due()
    celery_app = current_app.extensions["celery"]
    for campaign_id in started:  # each committed by start_due before it is enqueued
        celery_app.send_task(dispatch_campaign.name, args=(campaign_id,))
    return started
