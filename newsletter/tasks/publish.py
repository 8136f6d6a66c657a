"""The one way to enqueue a task: by its task object (the task's module owns its name)."""
from __future__ import annotations

from typing import Any

from celery import Task
from celery.result import AsyncResult
from flask import current_app


def enqueue(task: Task, *args: Any, **options: Any) -> AsyncResult:
    """Send `task` through the Celery app bound to the current Flask app.

    `task.delay()` would resolve the shared task against Celery's process-wide default app,
    which is whichever app was created last, not necessarily the one serving this request.
    Call this only after the database transaction the task depends on has committed.
    """
    celery_app = current_app.extensions["celery"]
    return celery_app.send_task(task.name, args=list(args), **options)
