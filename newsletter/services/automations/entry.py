"""Who enters an automation: recorded events (beat turns them into enrollments), API events and
date attributes (a daily scan).

An enrollment is unique per (automation, subscriber, scope): scope "" for event triggers (a
subscriber goes through an automation once), the year for a date trigger (once a year). A
repeated event, a redelivered beat task or two runners at once therefore enrol nobody twice.

An automation with `reentry` takes a subscriber again once they left (completed or exited) and
at least `reentry_gap_minutes` have passed since: the first entry still has scope "", a later
one the scope "r:<event id>" (one event enrols once), and a partial unique index lets only one
of those be active at a time (two events at once enrol once).
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import (
    Automation,
    AutomationEvent,
    AutomationStep,
    Enrollment,
    EnrollmentState,
    Subscriber,
    TriggerKind,
    dialect,
)
from ...models.base import utcnow
from .. import automation_events
from ..addresses import normalize_email
from ..errors import Conflict, ValidationError
from .automations import EVENT_NAME

MAX_PAYLOAD_KEYS = 50


def _first_step(automation_id: Any) -> Any:
    return (select(AutomationStep.id).where(AutomationStep.automation_id == automation_id)
            .order_by(AutomationStep.position, AutomationStep.id).limit(1).scalar_subquery())


def ingest(limit: int = 5000, now: datetime | None = None) -> int:
    """Turn up to `limit` unprocessed events into enrollments of the automations they trigger;
    returns the events processed. One transaction: the enrollments and the processed mark."""
    now = now or utcnow()
    taken = db.session.scalars(dialect.skip_locked(
        select(AutomationEvent.id).where(AutomationEvent.processed.is_(False))
        .order_by(AutomationEvent.id).limit(limit))).all()
    if not taken:
        db.session.commit()
        return 0
    ids = list(taken)
    matches = (select(Automation.id, AutomationEvent.subscriber_id, literal(""), AutomationEvent.id,
                      _first_step(Automation.id), literal(0), literal(now), literal(EnrollmentState.ACTIVE.value),
                      literal(now), literal(now))
               .join(Automation, and_(Automation.trigger == AutomationEvent.kind,
                                      Automation.trigger_key == AutomationEvent.key))
               .where(dialect.in_values(AutomationEvent.id, ids)))
    db.session.execute(dialect.insert(Enrollment.__table__).from_select(ENROLLMENT_COLUMNS, matches)
                       .on_conflict_do_nothing())
    _reenter(ids, now)
    db.session.execute(update(AutomationEvent).where(dialect.in_values(AutomationEvent.id, ids))
                       .values(processed=True).execution_options(synchronize_session=False))
    db.session.commit()
    return len(ids)


ENROLLMENT_COLUMNS = ["automation_id", "subscriber_id", "scope", "event_id", "current_step_id", "position",
                      "next_run_at", "state", "created_at", "updated_at"]


def _reenter(event_ids: list[int], now: datetime) -> None:
    """Enrol again, per re-entry automation these events trigger, whoever has an enrollment there
    (so the first-entry insert above did nothing) but none active or left within the gap."""
    reentry = list(db.session.scalars(
        select(Automation).join(AutomationEvent, and_(Automation.trigger == AutomationEvent.kind,
                                                      Automation.trigger_key == AutomationEvent.key))
        .where(Automation.reentry.is_(True), dialect.in_values(AutomationEvent.id, event_ids)).distinct()))
    for automation in reentry:
        earlier = aliased(Enrollment)
        blocking = select(earlier.id).where(
            earlier.automation_id == automation.id, earlier.subscriber_id == AutomationEvent.subscriber_id,
            or_(earlier.state == EnrollmentState.ACTIVE,
                earlier.updated_at > now - timedelta(minutes=automation.reentry_gap_minutes)))
        entered = select(earlier.id).where(earlier.automation_id == automation.id,
                                           earlier.subscriber_id == AutomationEvent.subscriber_id)
        again = (select(literal(automation.id), AutomationEvent.subscriber_id,
                        literal("r:") + cast(AutomationEvent.id, String), AutomationEvent.id,
                        _first_step(literal(automation.id)), literal(0), literal(now),
                        literal(EnrollmentState.ACTIVE.value), literal(now), literal(now))
                 .where(dialect.in_values(AutomationEvent.id, event_ids), AutomationEvent.kind == automation.trigger,
                        AutomationEvent.key == automation.trigger_key, exists(entered), ~exists(blocking)))
        db.session.execute(dialect.insert(Enrollment.__table__).from_select(ENROLLMENT_COLUMNS, again)
                           .on_conflict_do_nothing())


def enrol_dates(today: datetime | None = None) -> int:
    """Enrol the subscribers whose date attribute (YYYY-MM-DD...) has today's month and day in
    every date automation, once a year (scope = the year); returns the enrollments added."""
    now = today or utcnow()
    month_day, year = now.strftime("%m-%d"), str(now.year)
    added = 0
    for automation in db.session.scalars(select(Automation).where(Automation.trigger == TriggerKind.DATE)):
        value = dialect.json_text(Subscriber.attributes, automation.trigger_key)
        who = (select(literal(automation.id), Subscriber.id, literal(year), _first_step(literal(automation.id)),
                      literal(0), literal(now), literal(EnrollmentState.ACTIVE.value), literal(now), literal(now))
               .where(func.substr(cast(value, String), 6, 5) == month_day))
        added += len(db.session.execute(dialect.insert(Enrollment.__table__).from_select(
            ["automation_id", "subscriber_id", "scope", "current_step_id", "position", "next_run_at", "state",
             "created_at", "updated_at"], who).on_conflict_do_nothing().returning(Enrollment.__table__.c.id)).all())
    db.session.commit()
    return added


def record_api_event(name: Any, subscriber_id: Any = None, email: Any = None, idempotency_key: Any = None,
                     payload: Any = None) -> tuple[AutomationEvent, bool]:
    """POST /api/v1/events: (the event, created). The same idempotency key again returns the
    first event (and enrols no one again); with another name or subscriber it is a Conflict."""
    name = str(name or "")
    if not EVENT_NAME.match(name):
        raise ValidationError("name", "1 to 100 letters, digits, _ . : -")
    subscriber = _subscriber(subscriber_id, email)
    key = str(idempotency_key) if idempotency_key else None
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationError("idempotency_key", "1 to 200 characters.")
    if payload is not None and (not isinstance(payload, dict) or len(payload) > MAX_PAYLOAD_KEYS):
        raise ValidationError("payload", "An object of at most %(limit)s keys.",
                              limit=MAX_PAYLOAD_KEYS)
    if key and (existing := _replay(key, name, subscriber.id)) is not None:
        return existing, False
    event = automation_events.record(TriggerKind.API_EVENT, name, subscriber.id, payload or {}, key)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent request with the same key won
        db.session.rollback()
        winner = _replay(key, name, subscriber.id) if key else None
        if winner is None:
            raise
        return winner, False
    return event, True


def _subscriber(subscriber_id: Any, email: Any) -> Subscriber:
    if subscriber_id is not None:
        subscriber = db.session.get(Subscriber, subscriber_id)
        if subscriber is None:
            raise ValidationError("subscriber_id", "No subscriber with id %(subscriber_id)s.",
                                  subscriber_id=subscriber_id)
        return subscriber
    if not email:
        raise ValidationError("subscriber_id", "Give subscriber_id or email.")
    address = normalize_email(str(email), field="email")
    found = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
    if found is None:
        raise ValidationError("email", "No subscriber with this address.")
    return found


def _replay(key: str, name: str, subscriber_id: int) -> AutomationEvent | None:
    existing = db.session.scalar(select(AutomationEvent).where(AutomationEvent.idempotency_key == key))
    if existing is not None and (existing.kind != TriggerKind.API_EVENT or existing.key != name
                                 or existing.subscriber_id != subscriber_id):
        raise Conflict("idempotency_key", "This idempotency_key was already used for another event.")
    return existing
