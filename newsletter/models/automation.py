"""Automations: sequences of steps (send, wait, branch) that subscribers enter on an event.

An automation's trigger names the events that enrol a subscriber (`trigger` + `trigger_key`:
the list id, the attribute key, the API event's name). Each subscriber's way through it is an
enrollment pointing at the step it runs next and when; every step it ran leaves one execution
row, unique per (enrollment, step), written in the transaction that moves it on, so a step
runs once however often a worker retries or dies.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow
from .engagement import EngagementKind

BIG_ID = BigInteger().with_variant(Integer, "sqlite")


class AutomationStatus(str, enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"  # enrollments are held where they are (new ones wait at the start)


class TriggerKind(str, enum.Enum):
    SUBSCRIBED = "subscribed"  # joined a list (key: list id), confirmed or not
    CONFIRMED = "confirmed"  # a confirmed member of a list (key: list id)
    ATTRIBUTE_CHANGED = "attribute_changed"  # key: the attribute's name
    API_EVENT = "api_event"  # POST /api/v1/events (key: the event's name)
    DATE = "date"  # the attribute's month-day is today (key: the attribute's name), once a year


class StepKind(str, enum.Enum):
    SEND = "send"  # params: subject, html, text (sandboxed Jinja2, as notifications)
    WAIT = "wait"  # params: minutes, or at ("HH:MM") in the subscriber's timezone
    BRANCH = "branch"  # params: condition (rules | opened | clicked), rules or step_id, on_false (exit | skip)


class EnrollmentState(str, enum.Enum):
    ACTIVE = "active"
    COMPLETED = "completed"  # ran every step
    EXITED = "exited"  # left early (a branch said so, or the subscriber can no longer receive mail)


class Automation(Model):
    __tablename__ = "automations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[AutomationStatus] = mapped_column(enum_column(AutomationStatus), default=AutomationStatus.PAUSED)
    trigger: Mapped[TriggerKind] = mapped_column(enum_column(TriggerKind))
    trigger_key: Mapped[str] = mapped_column(String(200), default="")
    # Re-entry: False, a subscriber enters once ever; True, again after leaving (completed or
    # exited), at the earliest `reentry_gap_minutes` after they left (services/automations/entry.py).
    reentry: Mapped[bool] = mapped_column(default=False)
    reentry_gap_minutes: Mapped[int] = mapped_column(default=0)
    # Its emails carry a pixel and signed links, recorded per enrollment (branches on opened/clicked).
    tracking: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Automation {self.id} {self.status.value}>"


class AutomationStep(Model):
    __tablename__ = "automation_steps"
    # AUTOINCREMENT on SQLite (ids never reused): a step's id is part of its emails' ledger keys.
    __table_args__ = (Index("ix_automation_steps_automation_position", "automation_id", "position"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(primary_key=True)
    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    kind: Mapped[StepKind] = mapped_column(enum_column(StepKind))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Raised by every edit: an execution records the version it ran.
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AutomationEvent(Model):
    """Something that happened to a subscriber, recorded with the change that caused it and
    turned into enrollments by beat (services/automations/entry.py)."""

    __tablename__ = "automation_events"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_automation_events_idempotency_key"),
        # Beat takes the unprocessed ones, oldest first.
        Index("ix_automation_events_processed_id", "processed", "id"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    kind: Mapped[TriggerKind] = mapped_column(enum_column(TriggerKind))
    key: Mapped[str] = mapped_column(String(200), default="")
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    # API events: the caller's key (a repeat is not recorded twice); NULL for internal events,
    # which are exactly-once by being written in the transaction of the change itself.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    processed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Enrollment(Model):
    __tablename__ = "automation_enrollments"
    __table_args__ = (
        # Once per automation (`scope` ""), or once a year for a date trigger (`scope` the year);
        # a re-entry is scoped by its event ("r:<event id>"), and one of those at a time is active.
        UniqueConstraint("automation_id", "subscriber_id", "scope", name="uq_automation_enrollments_once"),
        Index("uq_automation_enrollments_reentry_active", "automation_id", "subscriber_id", unique=True,
              postgresql_where=text("state = 'active' AND scope LIKE 'r:%'"),
              sqlite_where=text("state = 'active' AND scope LIKE 'r:%'")),
        # The runner: active ones that are due.
        Index("ix_automation_enrollments_state_next_run", "state", "next_run_at"),
        Index("ix_automation_enrollments_automation_state", "automation_id", "state"),
        # AUTOINCREMENT on SQLite: a deleted enrollment's id is never handed out again, so a new one
        # cannot meet an old email's ledger key `automation:<enrollment>:<step>` (migration 0023).
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    automation_id: Mapped[int] = mapped_column(ForeignKey("automations.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(String(40), default="")
    event_id: Mapped[int | None] = mapped_column(BIG_ID)
    # The step to run next (NULL once it left); SET NULL keeps the row if that step is deleted.
    current_step_id: Mapped[int | None] = mapped_column(ForeignKey("automation_steps.id", ondelete="SET NULL"))
    # How far it got: the position of the last step it ran (a deleted step does not lose it).
    position: Mapped[int] = mapped_column(default=0)
    # Steps it ran that a later reorder put after `position` (services/automations/automations.move_step):
    # the runner passes over them.
    done_ahead: Mapped[list[int]] = mapped_column(JSON, default=list)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    state: Mapped[EnrollmentState] = mapped_column(enum_column(EnrollmentState), default=EnrollmentState.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class StepExecution(Model):
    """One step run for one enrollment: the unique pair makes it run once."""

    __tablename__ = "automation_step_executions"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", name="uq_automation_step_executions_once"),
        Index("ix_automation_step_executions_step", "step_id"),
    )

    id: Mapped[int] = mapped_column(BIG_ID, primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("automation_enrollments.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("automation_steps.id", ondelete="CASCADE"))
    step_version: Mapped[int] = mapped_column()
    outcome: Mapped[str] = mapped_column(String(40))  # queued, waited, continued, exited, failed
    notification_id: Mapped[int | None] = mapped_column(BIG_ID)
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AutomationLink(Model):
    """A link of a tracked send step, registered when the step is saved (its click tokens name it)."""

    __tablename__ = "automation_links"
    __table_args__ = (UniqueConstraint("step_id", "url", name="uq_automation_links_step_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("automation_steps.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)


class AutomationEngagement(Model):
    """Whether an enrollment opened or clicked the email of one send step, human and machine apart:
    one row each, the first hit's time and reason kept (what a branch on opened/clicked asks)."""

    __tablename__ = "automation_engagements"
    __table_args__ = (Index("ix_automation_engagements_step", "step_id", "kind", "machine"),)

    enrollment_id: Mapped[int] = mapped_column(BIG_ID, ForeignKey("automation_enrollments.id", ondelete="CASCADE"),
                                               primary_key=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("automation_steps.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    machine: Mapped[bool] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
