"""Automations on beat: enrol from recorded events, run due steps, publish their emails; the daily date scan."""
from __future__ import annotations

import time

from celery import shared_task
from flask import current_app

from ..services.automations import entry, runner
from .notifications import send_notifications
from .publish import enqueue


@shared_task(name="newsletter.tasks.automations.run")
def run() -> dict:
    """Beat, every few seconds, on the transactional worker (config.py task_routes): everything due
    comes from the database (no countdown waits in the broker). One run at a time, bounded by
    AUTOMATION_RUN_SECONDS; a tick that finds another run going returns at once."""
    config = current_app.config
    seconds = config["AUTOMATION_RUN_SECONDS"]
    with runner.one_run_at_a_time(2 * seconds + 30) as mine:
        if not mine:
            return {"busy": 1}
        deadline = time.monotonic() + seconds
        entered = 0
        while (entered < config["AUTOMATION_INGEST_MAX"] and time.monotonic() < deadline
               and (taken := entry.ingest(config["AUTOMATION_INGEST_BATCH"]))):
            entered += taken
        budget = runner.send_budget(config["AUTOMATION_INTERVAL"], config["AUTOMATION_NOTIFY_SHARE"],
                                    config["AUTOMATION_SENDS_PER_RUN"])
        backlog = runner.lane_backlog()  # what earlier runs queued and the lane has not sent yet
        result = runner.run_due(config["AUTOMATION_BATCH_SIZE"], max(0, budget - backlog),
                                max(1.0, deadline - time.monotonic()))
        ids, chunk = result.notification_ids, config["AUTOMATION_SEND_CHUNK"]
        for first in range(0, len(ids), chunk):  # committed by the runner before they are published
            enqueue(send_notifications, ids[first:first + chunk])
    return {"events": entered, "ran": result.ran, "completed": result.completed, "backlog": backlog,
            "queued": len(ids), "conflicts": result.conflicts}


@shared_task(name="newsletter.tasks.automations.enrol_dates")
def enrol_dates() -> int:
    """Beat, hourly: date-attribute automations (once a year per subscriber, so re-running is harmless)."""
    return entry.enrol_dates()
