"""Run due enrollments: claim a batch, run one step each, record it and move on, in one transaction.

A batch is taken with FOR UPDATE SKIP LOCKED (PostgreSQL), so runners at the same time take
different enrollments; paused automations' enrollments are not taken. Each step run inserts
its execution row, unique per (enrollment, step), in the transaction that moves the enrollment
on: a step is recorded once and its effects commit with it or not at all. A send step queues
its email in the notifications ledger in that same transaction (its idempotency key names the
enrollment and step, so a second try finds it), and the ledger's claim sends it exactly once.

Automation email goes through the transactional lane (its worker, its queue and NOTIFY_RATE),
never the campaigns' bulk queue or SEND_RATE bucket, so a crowd entering an automation cannot
slow a campaign down. To keep that lane quick for confirmations and API notifications, a run
queues at most `send_budget` emails (a share of NOTIFY_RATE): the rest stay due for the next run.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Automation,
    AutomationStatus,
    AutomationStep,
    Enrollment,
    EnrollmentState,
    NotificationKind,
    StepExecution,
    StepKind,
    Subscriber,
    SubscriberStatus,
    TriggerKind,
    dialect,
)
from ...models.base import utcnow
from ...sending.render import CompiledMessage, RenderError
from .. import settings
from ..audience import links, suppressions
from ..audience.segments.compile import compile_rules
from ..notifications import one_off
from . import timing

S = EnrollmentState


@dataclass
class RunResult:
    ran: int = 0  # steps run
    completed: int = 0
    notification_ids: list[int] = field(default_factory=list)  # queued: the caller publishes them
    conflicts: int = 0  # batches another runner had taken (SQLite, which has no row locks)


def send_budget(interval: float, share: float, cap: int) -> int:
    """Emails one run may queue: `share` of what the transactional lane sends (NOTIFY_RATE) in one
    run's interval, at most `cap`: the lane's queue never holds much more than a run's worth."""
    return max(1, min(cap, int(settings.get("NOTIFY_RATE") * interval * share)))


def run_due(batch_size: int = 500, send_budget: int = 1000, max_seconds: float = 20.0,
            now: datetime | None = None) -> RunResult:
    """Run due steps batch by batch until none is due, the budget is spent or time is up."""
    result = RunResult()
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        before = (result.ran, result.completed, result.conflicts)
        taken = run_batch(batch_size, send_budget - len(result.notification_ids), result, now)
        progressed = (result.ran, result.completed) != before[:2]
        # A step that moved someone on makes their next step due at once: the loop goes on with it.
        if not taken or not progressed or result.conflicts > before[2] or len(result.notification_ids) >= send_budget:
            break
    return result


def _due(batch_size: int, now: datetime) -> list[Enrollment]:
    running = select(Automation.id).where(Automation.status == AutomationStatus.ACTIVE)
    return list(db.session.scalars(dialect.skip_locked(
        select(Enrollment).where(Enrollment.state == S.ACTIVE, Enrollment.next_run_at <= now,
                                 Enrollment.automation_id.in_(running))
        .order_by(Enrollment.next_run_at, Enrollment.id).limit(batch_size))))


def run_batch(batch_size: int, send_budget: int, result: RunResult, now: datetime | None = None) -> int:
    """One batch, one transaction; returns how many enrollments it took."""
    now = now or utcnow()
    due = _due(batch_size, now)
    if not due:
        db.session.commit()
        return 0
    plan = _Plan(due, now)
    queued: list[int] = []
    ran = completed = 0
    try:
        for enrollment in due:
            step = plan.next_step(enrollment)
            if step is not None and step.kind == StepKind.SEND and len(queued) >= send_budget:
                continue  # stays due: the next run sends it
            notification_id = _run_one(enrollment, step, plan, now)
            if notification_id is not None:
                queued.append(notification_id)
            ran, completed = ran + (step is not None), completed + (step is None)
        db.session.commit()
    except IntegrityError:  # one of these steps had run already (another runner, a lost advance): none stays
        db.session.rollback()
        result.conflicts += 1
        return len(due)
    result.ran, result.completed = result.ran + ran, result.completed + completed
    result.notification_ids += queued
    return len(due)


class _Plan:
    """What a batch needs at once: the steps of its automations, its subscribers, branch answers."""

    def __init__(self, due: list[Enrollment], now: datetime) -> None:
        automation_ids = {e.automation_id for e in due}
        self.steps: dict[int, list[AutomationStep]] = defaultdict(list)
        for step in db.session.scalars(select(AutomationStep).where(AutomationStep.automation_id.in_(automation_ids))
                                       .order_by(AutomationStep.position, AutomationStep.id)):
            self.steps[step.automation_id].append(step)
        self.automations = {a.id: a for a in db.session.scalars(
            select(Automation).where(Automation.id.in_(automation_ids)))}
        subscriber_ids = [e.subscriber_id for e in due]
        self.subscribers = {s.id: s for s in db.session.scalars(
            select(Subscriber).where(dialect.in_values(Subscriber.id, subscriber_ids)))}
        self.now = now
        self._branches: dict[int, set[int]] = {}
        self._due = due

    def next_step(self, enrollment: Enrollment) -> AutomationStep | None:
        return next((s for s in self.steps[enrollment.automation_id] if s.position > enrollment.position), None)

    def after(self, step: AutomationStep, skip: int = 0) -> AutomationStep | None:
        later = [s for s in self.steps[step.automation_id] if s.position > step.position]
        return later[skip] if len(later) > skip else None

    def matches(self, step: AutomationStep, subscriber_id: int) -> bool:
        """Whether the subscriber matches the branch's rules (one query per step and batch)."""
        if step.id not in self._branches:
            ids = [e.subscriber_id for e in self._due if e.automation_id == step.automation_id]
            self._branches[step.id] = set(db.session.scalars(select(Subscriber.id).where(
                dialect.in_values(Subscriber.id, ids), compile_rules(step.params["rules"], self.now))))
        return subscriber_id in self._branches[step.id]


def _run_one(enrollment: Enrollment, step: AutomationStep | None, plan: _Plan, now: datetime) -> int | None:
    """Run `step` for `enrollment` (None: it ran every step) and move it on; a queued email's id."""
    if step is None:
        _leave(enrollment, S.COMPLETED, now)
        return None
    subscriber = plan.subscribers.get(enrollment.subscriber_id)
    execution = StepExecution(enrollment_id=enrollment.id, step_id=step.id, step_version=step.version,
                              outcome="", detail="")
    db.session.add(execution)
    following, run_at, notification_id = plan.after(step), now, None
    if subscriber is None or subscriber.status not in (SubscriberStatus.CONFIRMED, SubscriberStatus.UNCONFIRMED):
        execution.outcome, execution.detail = "exited", "The subscriber can no longer receive mail."
        following = None
    elif step.kind == StepKind.SEND:
        notification_id = _send(enrollment, step, subscriber, plan.automations[enrollment.automation_id], execution)
    elif step.kind == StepKind.WAIT:
        params = step.params
        run_at = timing.wait_until(now, params.get("minutes") or 0, params.get("at") or None,
                                   (subscriber.attributes or {}).get(timing.TIMEZONE_ATTRIBUTE),
                                   params.get("timezone") or "UTC")
        execution.outcome, execution.detail = "waited", f"until {run_at.isoformat(timespec='seconds')}"
    else:  # branch
        if plan.matches(step, subscriber.id):
            execution.outcome = "continued"
        elif step.params.get("on_false") == "skip":
            execution.outcome, following = "skipped", plan.after(step, skip=1)
        else:
            execution.outcome, following = "exited", None
    # How far it got: past the step skipped by a branch, so the next run starts after it.
    skipped = plan.after(step) if execution.outcome == "skipped" else None
    enrollment.position = skipped.position if skipped is not None else step.position
    if execution.outcome == "exited":
        _leave(enrollment, S.EXITED, now)
    elif following is None and step.kind != StepKind.WAIT:  # that was the last step (a last wait ends first)
        _leave(enrollment, S.COMPLETED, now)
    else:
        enrollment.current_step_id = following.id if following is not None else None
        enrollment.next_run_at, enrollment.updated_at = run_at, now
    return notification_id


def _leave(enrollment: Enrollment, state: EnrollmentState, now: datetime) -> None:
    enrollment.state, enrollment.current_step_id, enrollment.next_run_at, enrollment.updated_at = \
        state, None, None, now


def _send(enrollment: Enrollment, step: AutomationStep, subscriber: Subscriber, automation: Automation,
          execution: StepExecution) -> int | None:
    """Render the step's email for the subscriber and queue it (uncommitted); its id, or None."""
    if subscriber.status != SubscriberStatus.CONFIRMED or suppressions.is_suppressed(subscriber.email):
        execution.outcome, execution.detail = "exited", "Not a confirmed, unsuppressed subscriber."
        return None
    list_ids = [int(automation.trigger_key)] if automation.trigger in (TriggerKind.SUBSCRIBED,
                                                                         TriggerKind.CONFIRMED) else None
    version = subscriber.token_version
    unsubscribe = links.unsubscribe_url(subscriber.id, list_ids, None, version)
    context: dict[str, Any] = {
        "subscriber": {"id": subscriber.id, "email": subscriber.email, "name": subscriber.name or "",
                       "attributes": dict(subscriber.attributes or {})},
        "unsubscribe_url": unsubscribe, "preferences_url": links.preferences_url(subscriber.id, version)}
    params = step.params
    try:
        message = CompiledMessage(params["subject"], params.get("html") or "", params.get("text") or "")
        rendered = message.render(context)
    except RenderError as exc:
        execution.outcome = "exited"
        execution.detail = f"The email could not be rendered: {exc.field}: {exc.message}"[:500]
        return None
    headers = [("List-Unsubscribe", f"<{unsubscribe}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
               ("X-Newsletter-Automation", str(automation.id))]
    notification_id = one_off.queue(
        NotificationKind.AUTOMATION, subscriber.email, rendered.subject, rendered.html, rendered.text,
        subscriber_id=subscriber.id, headers=headers, commit=False,
        data={"automation_id": automation.id, "step_id": step.id, "enrollment_id": enrollment.id,
              "token_version": version},
        idempotency_key=f"automation:{enrollment.id}:{step.id}")
    execution.outcome, execution.notification_id = "queued", notification_id
    return notification_id
