"""Events that may start automations, recorded in the transaction of the change that caused them.

The audience services call `record` (a subscriber joined or confirmed a list, an attribute
changed) before their own commit, so the event exists exactly when the change does; beat turns
events into enrollments later (services/automations/entry.py). This module imports only the
models, so any service can call it without depending on the automations package.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import JSON, literal, select
from sqlalchemy.sql import Select

from ..extensions import db
from ..models import AutomationEvent, TriggerKind
from ..models.base import utcnow


def record(kind: TriggerKind, key: str | int, subscriber_id: int, payload: dict[str, Any] | None = None,
           idempotency_key: str | None = None) -> AutomationEvent:
    """Add one event to the session (the caller commits it with its change)."""
    event = AutomationEvent(kind=kind, key=str(key)[:200], subscriber_id=subscriber_id, payload=payload or {},
                            idempotency_key=idempotency_key, processed=False)
    db.session.add(event)
    return event


def record_many(kind: TriggerKind, keys: Iterable[str | int], subscriber_id: int) -> None:
    for key in keys:
        record(kind, key, subscriber_id)


def record_from_select(kind: TriggerKind, key: str | int, subscribers: Select) -> None:
    """One event per subscriber id `subscribers` selects (a bulk change), in one INSERT ... SELECT."""
    subquery = subscribers.subquery()
    db.session.execute(AutomationEvent.__table__.insert().from_select(
        ["kind", "key", "subscriber_id", "payload", "processed", "created_at"],
        select(literal(kind.value), literal(str(key)), subquery.c[0], literal({}, JSON), literal(False),
               literal(utcnow()))))


def changed_attributes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The attribute keys whose value differs (added, changed or removed)."""
    before, after = before or {}, after or {}
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))

