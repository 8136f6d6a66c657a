"""Automations on beat: enrol from recorded events, run due steps, publish their emails; the daily date scan."""
from __future__ import annotations

from celery import shared_task
from flask import current_app

from ..services.automations import entry, runner
from .notifications import send_notification
from .publish import enqueue


@shared_task(name="newsletter.tasks.automations.run")
def run() -> dict:
    """Beat, every few seconds: everything due comes from the database (no countdown waits in the broker)."""
    config = current_app.config
    entered = 0
    while (taken := entry.ingest(config["AUTOMATION_INGEST_BATCH"])) and entered < config["AUTOMATION_INGEST_MAX"]:
        entered += taken
    budget = runner.send_budget(config["AUTOMATION_INTERVAL"], config["AUTOMATION_NOTIFY_SHARE"],
                                config["AUTOMATION_SENDS_PER_RUN"])
    result = runner.run_due(config["AUTOMATION_BATCH_SIZE"], budget, config["AUTOMATION_RUN_SECONDS"])
    for notification_id in result.notification_ids:  # committed by the runner before they are published
        enqueue(send_notification, notification_id)
    return {"events": entered, "ran": result.ran, "completed": result.completed,
            "queued": len(result.notification_ids), "conflicts": result.conflicts}


@shared_task(name="newsletter.tasks.automations.enrol_dates")
def enrol_dates() -> int:
    """Beat, hourly: date-attribute automations (once a year per subscriber, so re-running is harmless)."""
    return entry.enrol_dates()
