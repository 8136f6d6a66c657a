"""Outgoing webhooks (being built): `emit` records an event for every endpoint that wants it."""
from __future__ import annotations

from typing import Any


def emit(event: str, data: dict[str, Any]) -> int:
    """Add one outbox row per active webhook subscribed to `event`, in the caller's
    transaction (the caller commits). Returns how many rows were added."""
    return 0
