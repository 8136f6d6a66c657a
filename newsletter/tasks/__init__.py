"""Thin Celery tasks: parse ids and plain values, call one service, return or retry."""
from __future__ import annotations

from typing import Any

from celery import Task
from celery.result import AsyncResult
from flask import current_app

from . import bulk, campaigns, email, imports, notifications, system, webhooks  # noqa: F401  (registers the tasks)


def enqueue(task: Task, *args: Any, **options: Any) -> AsyncResult:
    """Send `task` through the Celery app bound to the current Flask app.

    `task.delay()` would resolve the shared task against Celery's process-wide default app,
    which is whichever app was created last, not necessarily the one serving this request.
    Call this only after the database transaction the task depends on has committed.
    """
    celery_app = current_app.extensions["celery"]
    return celery_app.tasks[task.name].apply_async(args=args, **options)
