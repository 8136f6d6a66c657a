"""Thin Celery tasks: parse ids and plain values, call one service, return or retry."""
from __future__ import annotations

# Importing the modules registers their tasks.
from . import automations, bounces, bulk, campaigns, email, engagement, imports, notifications, system, webhooks  # noqa: F401
from .publish import enqueue

__all__ = ["enqueue"]
