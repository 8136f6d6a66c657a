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
queues at most `send_budget` emails (a share of NOTIFY_RATE, less what the lane has not sent
yet: `lane_backlog`): the rest stay due for the next run. Runs go one at a time
(`one_run_at_a_time`), on the transactional worker (config.py task_routes).

A batch costs a few queries, not a few per enrollment: each step's email is compiled once per
batch, the batch's suppressions and already-queued idempotency keys are read in one query each,
and its notifications and step executions are inserted in one flush each. (Per enrollment, the
compile, the suppression lookup and the notification's flush took 15 ms; see bench/README.md.)
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Automation,
    AutomationStatus,
    AutomationStep,
    Enrollment,
    EnrollmentState,
    Notification,
    NotificationKind,
    NotificationStatus,
    StepExecution,
    StepKind,
    Subscriber,
    SubscriberStatus,
    Suppression,
    TriggerKind,
    dialect,
)
from ...models.base import utcnow
from ...sending.render import RenderError
from .. import settings
from ..audience import links
from ..audience.segments.compile import compile_rules
from ..delivery import leases
from ..notifications import notifications, one_off
from . import timing, tracking

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


RUN_KEY = "newsletter:automations:run"
# Take the run over from a holder whose process died (its liveness lease is gone).
_TAKE_OVER = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
              "return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) end return false")


@contextmanager
def one_run_at_a_time(seconds: float) -> Iterator[bool]:
    """Yield whether this process may run now: one run at a time across the workers. Runs take a
    transactional process each; two at once would leave the lane none for its sends.

    A Redis key holds the run's claim token, under this process's liveness lease
    (delivery.leases): a run whose process died is taken over as soon as its lease expires,
    otherwise the key expires after `seconds`."""
    client, token, ms = notifications.limiter().client, leases.current().token(), int(seconds * 1000)
    if not client.set(RUN_KEY, token, nx=True, px=ms):
        found = client.get(RUN_KEY)
        holder = found.decode() if isinstance(found, bytes) else ""
        if not (holder and leases.dead_claims([holder]) and client.eval(_TAKE_OVER, 1, RUN_KEY, holder, token, ms)):
            yield False
            return
    try:
        yield True
    finally:
        if client.get(RUN_KEY) == token.encode():
            client.delete(RUN_KEY)


def lane_backlog() -> int:
    """Automation emails queued and not sent yet: a run queues only what its budget leaves after
    them, so the transactional lane's queue holds about one run's worth however slow it is."""
    backlog = db.session.scalar(select(func.count()).select_from(Notification).where(
        Notification.status == NotificationStatus.QUEUED, Notification.kind == NotificationKind.AUTOMATION)) or 0
    db.session.commit()
    return backlog


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
    ran = completed = 0
    try:
        for enrollment in due:
            step = plan.next_step(enrollment)
            if step is not None and step.kind == StepKind.SEND and len(plan.sends) >= send_budget:
                continue  # stays due: the next run sends it
            _run_one(enrollment, step, plan, now)
            ran, completed = ran + (step is not None), completed + (step is None)
        queued = plan.flush()
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
        emails = [s.email for s in self.subscribers.values()]
        self.suppressed = set(db.session.scalars(select(Suppression.email).where(Suppression.email.in_(emails))))
        keys = [idempotency_key(e.id, upcoming.id) for e in due
                if (upcoming := self.next_step(e)) is not None and upcoming.kind == StepKind.SEND]
        self.already_queued = one_off.queued_under(NotificationKind.AUTOMATION, keys)
        # What the batch adds, in one flush each: the executions and the emails they queue.
        self.executions: list[StepExecution] = []
        self.sends: list[tuple[StepExecution, Notification | int]] = []


    def flush(self) -> list[int]:
        """Insert the batch's emails, then its executions naming them; the emails' ids.

        Bulk INSERTs (ORM-enabled, so column defaults apply), not a unit-of-work flush: the rows
        never need to be objects of the session, and flushing 500 of each cost over half of a
        batch's time (py-spy, bench/README.md "Automation entry")."""
        new = [n for _, n in self.sends if isinstance(n, Notification)]
        inserted = iter(db.session.scalars(
            insert(Notification).returning(Notification.id, sort_by_parameter_order=True),
            [_values(n) for n in new]).all() if new else [])
        ids = []
        for execution, notification in self.sends:
            execution.notification_id = next(inserted) if isinstance(notification, Notification) else notification
            ids.append(execution.notification_id)
        if self.executions:
            db.session.execute(insert(StepExecution), [
                {**_values(e), "notification_id": e.notification_id, "created_at": self.now} for e in self.executions])
        return ids

    def next_step(self, enrollment: Enrollment) -> AutomationStep | None:
        # done_ahead: steps it ran that a reorder put after its position (automations.move_step).
        done = enrollment.done_ahead or ()
        return next((s for s in self.steps[enrollment.automation_id]
                     if s.position > enrollment.position and s.id not in done), None)

    def after(self, step: AutomationStep, skip: int = 0) -> AutomationStep | None:
        later = [s for s in self.steps[step.automation_id] if s.position > step.position]
        return later[skip] if len(later) > skip else None

    def matches(self, step: AutomationStep, enrollment: Enrollment) -> bool:
        """Whether the branch's condition holds: the subscriber matches its rules, or opened/clicked
        the email of its send step as recorded so far (one query per step and batch)."""
        condition = step.params.get("condition") or "rules"
        if step.id not in self._branches:
            mine = [e for e in self._due if e.automation_id == step.automation_id]
            if condition == "rules":
                self._branches[step.id] = set(db.session.scalars(select(Subscriber.id).where(
                    dialect.in_values(Subscriber.id, [e.subscriber_id for e in mine]),
                    compile_rules(step.params["rules"], self.now))))
            else:
                self._branches[step.id] = tracking.engaged(step.params["step_id"], condition, [e.id for e in mine])
        return (enrollment.subscriber_id if condition == "rules" else enrollment.id) in self._branches[step.id]


def _values(row: Notification | StepExecution) -> dict[str, Any]:
    """The attributes set on a new, never-added row (the rest take their column defaults)."""
    return {key: value for key, value in vars(row).items() if not key.startswith("_")}


def idempotency_key(enrollment_id: int, step_id: int) -> str:
    """The ledger key of a send step's email: one per enrollment and step."""
    return f"automation:{enrollment_id}:{step_id}"


def _run_one(enrollment: Enrollment, step: AutomationStep | None, plan: _Plan, now: datetime) -> None:
    """Run `step` for `enrollment` (None: it ran every step) and move it on; an email goes to `plan.sends`."""
    if step is None:
        _leave(enrollment, S.COMPLETED, now)
        return
    subscriber = plan.subscribers.get(enrollment.subscriber_id)
    execution = StepExecution(enrollment_id=enrollment.id, step_id=step.id, step_version=step.version,
                              outcome="", detail="")
    plan.executions.append(execution)
    following, run_at = plan.after(step), now
    if subscriber is None or subscriber.status not in (SubscriberStatus.CONFIRMED, SubscriberStatus.UNCONFIRMED):
        execution.outcome, execution.detail = "exited", "The subscriber can no longer receive mail."
        following = None
    elif step.kind == StepKind.SEND:
        _send(enrollment, step, subscriber, plan, execution)
    elif step.kind == StepKind.WAIT:
        params = step.params
        run_at = timing.wait_until(now, params.get("minutes") or 0, params.get("at") or None,
                                   (subscriber.attributes or {}).get(timing.TIMEZONE_ATTRIBUTE),
                                   params.get("timezone") or "UTC")
        execution.outcome, execution.detail = "waited", f"until {run_at.isoformat(timespec='seconds')}"
    else:  # branch
        if plan.matches(step, enrollment):
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


def _leave(enrollment: Enrollment, state: EnrollmentState, now: datetime) -> None:
    enrollment.state, enrollment.current_step_id, enrollment.next_run_at, enrollment.updated_at = \
        state, None, None, now


def _send(enrollment: Enrollment, step: AutomationStep, subscriber: Subscriber, plan: _Plan,
          execution: StepExecution) -> None:
    """Render the step's email for the subscriber and add it to the batch's sends (uncommitted)."""
    if subscriber.status != SubscriberStatus.CONFIRMED or subscriber.email in plan.suppressed:
        execution.outcome, execution.detail = "exited", "Not a confirmed, unsuppressed subscriber."
        return
    key = idempotency_key(enrollment.id, step.id)
    if (existing := plan.already_queued.get(key)) is not None:  # queued by an earlier try: not again
        execution.outcome = "queued"
        plan.sends.append((execution, existing))
        return
    automation = plan.automations[enrollment.automation_id]
    list_ids = [int(automation.trigger_key)] if automation.trigger in (TriggerKind.SUBSCRIBED,
                                                                         TriggerKind.CONFIRMED) else None
    version = subscriber.token_version
    unsubscribe = links.unsubscribe_url(subscriber.id, list_ids, None, version)
    context: dict[str, Any] = {
        "subscriber": {"id": subscriber.id, "email": subscriber.email, "name": subscriber.name or "",
                       "attributes": dict(subscriber.attributes or {})},
        "unsubscribe_url": unsubscribe, "preferences_url": links.preferences_url(subscriber.id, version)}
    try:
        # Compiled once per step version and process (a per-process cache: tracking.compiled).
        message, link_ids, urls = tracking.compiled(step, automation.tracking)
        rendered = message.render(context)
    except RenderError as exc:
        execution.outcome = "exited"
        execution.detail = f"The email could not be rendered: {exc.field}: {exc.message}"[:500]
        return
    headers = [("List-Unsubscribe", f"<{unsubscribe}>"), ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
               ("X-Newsletter-Automation", str(automation.id))]
    html = rendered.html
    if automation.tracking:  # the pixel and signed links, naming this enrollment and step
        html = tracking.fill(html, step.id, enrollment.id, link_ids, urls)
    notification = one_off.build(
        NotificationKind.AUTOMATION, subscriber.email, rendered.subject, html, rendered.text,
        subscriber_id=subscriber.id, headers=headers,
        data={"automation_id": automation.id, "step_id": step.id, "enrollment_id": enrollment.id,
              "token_version": version},
        idempotency_key=key)
    execution.outcome = "queued"
    plan.sends.append((execution, notification))
