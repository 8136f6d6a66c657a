"""Housekeeping tasks (routed to the `default` queue)."""
from __future__ import annotations

from celery import shared_task
from flask import current_app


@shared_task(name="newsletter.tasks.system.ping", ignore_result=False)  # health checks wait for it
def ping() -> dict:
    """Proves a worker is consuming and that tasks run inside the Flask app context."""
    return {"app": current_app.name, "env": current_app.config["ENV_NAME"]}
