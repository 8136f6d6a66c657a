"""Thin Celery tasks: parse ids and plain values, call one service, return or retry."""
from __future__ import annotations

from . import bulk, campaigns, email, engagement, imports, notifications, system, webhooks  # noqa: F401  (registers the tasks)
from .publish import enqueue

__all__ = ["enqueue"]
