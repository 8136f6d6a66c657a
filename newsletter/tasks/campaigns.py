"""Campaign orchestration (default queue): dispatch, window callbacks, the sweep, scheduled starts.

Each task is one call into `services.campaigns.dispatch`; what stays here is Celery's part:
`publish_window` puts one window on the broker as a chord of send batches.
"""
from __future__ import annotations

from celery import chord, group, shared_task
from flask import current_app

from ..services.campaigns import ab_tests, campaigns, dispatch
from .bulk import send_batch
from .publish import enqueue


def publish_window(campaign_id: int, batches: list[list[int]]) -> None:
    """One window: a chord of `send_batch` tasks whose callback is `window_done` (dispatch.Publisher)."""
    celery_app = current_app.extensions["celery"]
    header = group(celery_app.signature(send_batch.name, args=(campaign_id, batch)) for batch in batches)
    chord(header, app=celery_app)(celery_app.signature(window_done.name, args=(campaign_id,)))


@shared_task(name="newsletter.tasks.campaigns.dispatch_campaign")
def dispatch_campaign(campaign_id: int) -> int:
    """Snapshot the recipients (once) and start the first windows; safe to run twice."""
    return dispatch.dispatch(int(campaign_id), publish_window)


@shared_task(name="newsletter.tasks.campaigns.window_done")
def window_done(results: list, campaign_id: int) -> dict:
    """Chord callback: add the window's counts to the totals, keep the pipeline full, finish."""
    return dispatch.window_done(results, int(campaign_id), publish_window)


@shared_task(name="newsletter.tasks.campaigns.sweep")
def sweep() -> dict:
    """Beat: recover rows whose owner vanished, publish due retries, finish what is done."""
    return dispatch.sweep(publish_window)


@shared_task(name="newsletter.tasks.campaigns.start_scheduled")
def start_scheduled() -> list[int]:
    """Beat: scheduled campaigns whose time has come (read from the database, survives restarts)."""
    started = campaigns.start_due()
    for campaign_id in started:  # each committed by start_due before it is enqueued
        enqueue(dispatch_campaign, campaign_id)
    return started


@shared_task(name="newsletter.tasks.campaigns.decide_ab_tests")
def decide_ab_tests() -> dict[str, str]:
    """Beat: A/B tests whose wait is over get their winner, and the rest of the recipients get it."""
    return {str(campaign_id): label for campaign_id, label in ab_tests.decide_due(publish_window).items()}
