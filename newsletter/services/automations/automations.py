"""Automations and their steps: create, edit, reorder, pause and resume, with every value checked first.

Steps are edited in place (their `version` goes up): an enrollment that has not reached a step
yet runs it as it is when its turn comes, one that ran it already is not touched, and one
already waiting after a wait step keeps the time it was given.

A move swaps a step with its neighbour (`move_step`), in a paused automation. Who has run
neither runs both in the new order (one waiting for the moved step keeps its time); who has run
both is not touched. Who ran the upper one and waits for the lower one (its waiting time kept)
still runs the lower one next, and then passes over the one it ran already
(`Enrollment.done_ahead`): a move never runs a step twice for anyone nor takes one away from
someone who had not reached it.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import update as sql_update

from ...extensions import db
from ...models import (
    Automation,
    AutomationStatus,
    AutomationStep,
    Enrollment,
    EnrollmentState,
    MailingList,
    StepKind,
    TriggerKind,
)
from ...sending.render import CompiledMessage, RenderError
from ..audience.segments import segments
from ..errors import NotFound, StateConflict, ValidationError
from ..messages import Message
from . import timing
from . import tracking as email_tracking

EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
MAX_WAIT_MINUTES = 366 * 24 * 60
ON_FALSE = ("exit", "skip")  # a branch whose condition is false: leave, or skip the next step
# What a branch asks: the segment rules, or whether the subscriber opened / clicked an earlier
# send step's email (`step_id`; by default the last send step before the branch).
CONDITIONS = ("rules", "opened", "clicked")
ENGAGEMENT = ("opened", "clicked")
MAX_REENTRY_GAP = 366 * 24 * 60
SAMPLE = {"subscriber": {"id": 1, "email": "sample@example.org", "name": "Sample",
                         "attributes": {}}, "unsubscribe_url": "", "preferences_url": ""}


def get(automation_id: int) -> Automation:
    automation = db.session.get(Automation, automation_id)
    if automation is None:
        raise NotFound("automation", automation_id)
    return automation


def all_automations() -> list[Automation]:
    return list(db.session.scalars(select(Automation).order_by(Automation.id)))


def oldest_first(after: int | None = None, limit: int = 50) -> list[Automation]:
    query = select(Automation).order_by(Automation.id).limit(limit)
    if after is not None:
        query = query.where(Automation.id > after)
    return list(db.session.scalars(query))


def steps(automation_id: int) -> list[AutomationStep]:
    return list(db.session.scalars(select(AutomationStep).where(AutomationStep.automation_id == automation_id)
                                   .order_by(AutomationStep.position, AutomationStep.id)))


def get_step(automation_id: int, step_id: int) -> AutomationStep:
    step = db.session.get(AutomationStep, step_id)
    if step is None or step.automation_id != automation_id:
        raise NotFound("step", step_id)
    return step


# Checks ---------------------------------------------------------------------------------------

def _name(value: Any) -> str:
    name = " ".join(str(value or "").split())
    if not name or len(name) > 200:
        raise ValidationError("name", "A name of 1 to 200 characters.")
    return name


def trigger_of(kind: Any, key: Any) -> tuple[TriggerKind, str]:
    try:
        trigger = TriggerKind(kind)
    except ValueError:
        raise ValidationError("trigger", "One of %(value)s.", value=', '.join(t.value for t in TriggerKind)) from None
    key = str(key if key is not None else "").strip()
    if trigger in (TriggerKind.SUBSCRIBED, TriggerKind.CONFIRMED):
        if not key.isdigit() or len(key) > 9 or db.session.get(MailingList, int(key)) is None:
            raise ValidationError("trigger_key", "The id of an existing list.")
    elif trigger == TriggerKind.API_EVENT:
        if not EVENT_NAME.match(key):
            raise ValidationError("trigger_key", "The event's name: 1 to 100 letters, digits, _ . : -")
    elif not ATTRIBUTE_KEY.match(key):
        raise ValidationError("trigger_key", "The attribute's key: 1 to 100 letters, digits, _ . -")
    return trigger, key


def step_params(kind: Any, params: Any) -> tuple[StepKind, dict[str, Any]]:
    """A step's kind and its checked, normalised params; ValidationError naming the field."""
    try:
        step_kind = StepKind(kind)
    except ValueError:
        raise ValidationError("kind", "One of %(value)s.", value=', '.join(k.value for k in StepKind)) from None
    if not isinstance(params, dict):
        raise ValidationError("params", "An object.")
    return step_kind, {StepKind.SEND: _send, StepKind.WAIT: _wait, StepKind.BRANCH: _branch}[step_kind](params)


def _send(params: dict[str, Any]) -> dict[str, Any]:
    subject, html, text = (str(params.get(k) or "") for k in ("subject", "html", "text"))
    if not subject.strip() or len(subject) > 500:
        raise ValidationError("params.subject", "A subject of 1 to 500 characters.")
    if not html.strip() and not text.strip():
        raise ValidationError("params.html", "An HTML or a text body.")
    if len(html) > 500_000 or len(text) > 500_000:
        raise ValidationError("params.html", "At most 500,000 characters.")
    try:  # compiled in the sandbox and tried on a subscriber with no attributes
        CompiledMessage(subject, html, text).render(SAMPLE)
    except RenderError as exc:
        raise ValidationError(f"params.{exc.field}", exc.message) from None
    return {"subject": subject, "html": html, "text": text}


def _wait(params: dict[str, Any]) -> dict[str, Any]:
    minutes, at, tz = params.get("minutes") or 0, params.get("at") or "", params.get("timezone") or "UTC"
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 <= minutes <= MAX_WAIT_MINUTES:
        raise ValidationError("params.minutes", "Whole minutes from 0 to %(limit)s.",
                              limit=MAX_WAIT_MINUTES)
    if at:
        try:
            timing.parse_time_of_day(str(at))
        except ValueError as exc:
            raise ValidationError("params.at", str(exc)) from None
    if not minutes and not at:
        raise ValidationError("params.minutes", "Wait some minutes, until a time of day, or both.")
    if len(str(tz)) > 64 or timing.zone(str(tz), "").key != str(tz):
        raise ValidationError("params.timezone", "An IANA timezone such as Europe/Lisbon.")
    return {"minutes": minutes, "at": str(at), "timezone": str(tz)}


def _branch(params: dict[str, Any]) -> dict[str, Any]:
    condition = params.get("condition") or "rules"
    if condition not in CONDITIONS:
        raise ValidationError("params.condition", "rules, opened or clicked.")
    on_false = params.get("on_false") or "exit"
    if on_false not in ON_FALSE:
        raise ValidationError("params.on_false", "exit or skip.")
    if condition == "rules":
        return {"condition": "rules", "rules": segments.validated(params.get("rules"), prefix="params.rules"),
                "on_false": on_false}
    step_id = params.get("step_id")
    if step_id in (None, ""):
        step_id = None
    elif isinstance(step_id, bool) or not isinstance(step_id, int) or step_id < 1:
        raise ValidationError("params.step_id", "The id of a send step before this branch.")
    return {"condition": condition, "step_id": step_id, "on_false": on_false}


def _engagement_branch(step: AutomationStep) -> bool:
    return step.kind == StepKind.BRANCH and step.params.get("condition") in ENGAGEMENT


def _resolve(automation: Automation, kind: StepKind, params: dict[str, Any], position: int,
             others: list[AutomationStep]) -> dict[str, Any]:
    """A branch on opened/clicked names an earlier send step of this automation (the last one by
    default), and needs the automation's tracking on; ValidationError naming the field."""
    if kind != StepKind.BRANCH or params.get("condition") not in ENGAGEMENT:
        return params
    if not automation.tracking:
        raise ValidationError("params.condition", "Turn on tracking for this automation first: opens and clicks "
                                                  "are known only from tracked emails.")
    earlier = [s for s in others if s.kind == StepKind.SEND and s.position < position]
    if params.get("step_id") is None:
        if not earlier:
            raise ValidationError("params.step_id", "There is no send step before this branch.")
        return {**params, "step_id": earlier[-1].id}
    target = next((s for s in others if s.id == params["step_id"]), None)
    if target is None:
        raise ValidationError("params.step_id", "This automation has no step %(step_id)s.", step_id=params['step_id'])
    if target.kind != StepKind.SEND:
        raise ValidationError("params.step_id", "Step %(position)s is a %(kind)s step: a branch asks about the "
                                                "email of a send step.",
                                                position=target.position, kind=Message(target.kind.value))
    if target.position >= position:
        raise ValidationError("params.step_id", "Step %(position)s does not come before this branch.",
                              position=target.position)
    return params


def _reentry(reentry: Any, gap: Any) -> tuple[bool, int]:
    if not isinstance(reentry, bool):
        raise ValidationError("reentry", "true or false.")
    if isinstance(gap, bool) or not isinstance(gap, int) or not 0 <= gap <= MAX_REENTRY_GAP:
        raise ValidationError("reentry_gap_minutes", "Whole minutes from 0 to %(limit)s.",
                              limit=MAX_REENTRY_GAP)
    return reentry, gap


# Changes --------------------------------------------------------------------------------------

def create(name: Any, trigger: Any, trigger_key: Any, step_list: list[dict[str, Any]] | None = None,
           reentry: Any = False, reentry_gap_minutes: Any = 0, tracking: Any = False) -> Automation:
    """A paused automation with its steps (resume it to start running them)."""
    kind, key = trigger_of(trigger, trigger_key)
    checked = [step_params(s.get("kind"), s.get("params")) for s in (step_list or [])]
    again, gap = _reentry(reentry, reentry_gap_minutes)
    if not isinstance(tracking, bool):
        raise ValidationError("tracking", "true or false.")
    automation = Automation(name=_name(name), trigger=kind, trigger_key=key, status=AutomationStatus.PAUSED,
                            reentry=again, reentry_gap_minutes=gap, tracking=tracking)
    db.session.add(automation)
    db.session.flush()
    made: list[AutomationStep] = []
    for position, (step_kind, params) in enumerate(checked, start=1):
        try:
            params = _resolve(automation, step_kind, params, position, made)
        except ValidationError as exc:
            db.session.rollback()
            raise ValidationError(f"steps.{position - 1}.{exc.field}", exc.text) from None
        made.append(AutomationStep(automation_id=automation.id, position=position, kind=step_kind, params=params))
        db.session.add(made[-1])
        db.session.flush()
        if step_kind == StepKind.SEND:
            email_tracking.register_links(made[-1])
    db.session.commit()
    return automation


def update(automation_id: int, name: Any = None, trigger: Any = None, trigger_key: Any = None,
           reentry: Any = None, reentry_gap_minutes: Any = None, tracking: Any = None) -> Automation:
    automation = get(automation_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _name(name)
    if trigger is not None or trigger_key is not None:
        changes["trigger"], changes["trigger_key"] = trigger_of(
            trigger if trigger is not None else automation.trigger, trigger_key if trigger_key is not None
            else automation.trigger_key)
    if reentry is not None or reentry_gap_minutes is not None:
        changes["reentry"], changes["reentry_gap_minutes"] = _reentry(
            automation.reentry if reentry is None else reentry,
            automation.reentry_gap_minutes if reentry_gap_minutes is None else reentry_gap_minutes)
    if tracking is not None:
        if not isinstance(tracking, bool):
            raise ValidationError("tracking", "true or false.")
        if not tracking and any(_engagement_branch(s) for s in steps(automation_id)):
            raise ValidationError("tracking", "A branch asks whether an email was opened or clicked: change or "
                                              "delete it before turning tracking off.")
        changes["tracking"] = tracking
    for field, value in changes.items():
        setattr(automation, field, value)
    db.session.commit()
    return automation


def set_status(automation_id: int, status: AutomationStatus | str) -> Automation:
    """Pause (everyone stays where they are) or resume (due steps run on the next beat)."""
    automation = get(automation_id)
    try:
        automation.status = AutomationStatus(status)
    except ValueError:
        raise ValidationError("status", "active or paused.") from None
    db.session.commit()
    return automation


def delete(automation_id: int) -> None:
    db.session.delete(get(automation_id))
    db.session.commit()


def add_step(automation_id: int, kind: Any, params: Any) -> AutomationStep:
    """Append a step: enrollments that have run every step so far and are still active go on to it."""
    automation = get(automation_id)
    step_kind, checked = step_params(kind, params)
    existing = steps(automation_id)
    position = (existing[-1].position if existing else 0) + 1
    checked = _resolve(automation, step_kind, checked, position, existing)
    step = AutomationStep(automation_id=automation_id, position=position, kind=step_kind, params=checked)
    db.session.add(step)
    db.session.flush()
    if step_kind == StepKind.SEND:
        email_tracking.register_links(step)
    db.session.commit()
    return step


def edit_step(automation_id: int, step_id: int, params: Any) -> AutomationStep:
    """New params for a step (its kind stays): only enrollments that have not run it see them."""
    step = get_step(automation_id, step_id)
    _, checked = step_params(step.kind, params)
    step.params = _resolve(get(automation_id), step.kind, checked, step.position, steps(automation_id))
    step.version += 1
    if step.kind == StepKind.SEND:
        email_tracking.register_links(step)
    db.session.commit()
    return step


def delete_step(automation_id: int, step_id: int) -> None:
    """Remove a step nobody is about to run and no branch asks about; enrollments waiting for it
    would skip it silently."""
    step = get_step(automation_id, step_id)
    waiting = db.session.scalar(select(func.count()).select_from(Enrollment).where(
        Enrollment.current_step_id == step.id, Enrollment.state == EnrollmentState.ACTIVE)) or 0
    if waiting:
        raise StateConflict("step", "%(waiting)s subscriber(s) are about to run this step; pause the automation and"
                                    " edit the step instead.", waiting=format(waiting, ','))
    asking = next((s for s in steps(automation_id) if _engagement_branch(s) and s.params.get("step_id") == step.id),
                  None)
    if asking is not None:
        raise StateConflict("step", "The branch at step %(position)s asks about this email: change or delete that "
                                    "branch first.", position=asking.position)
    db.session.delete(step)
    db.session.commit()


def move_step(automation_id: int, step_id: int, direction: Any) -> AutomationStep:
    """Swap a step with the one above ("up") or below ("down"); see the module's docstring for who
    runs what after it. A branch must stay after the send step it asks about (StateConflict)."""
    step = get_step(automation_id, step_id)
    if get(automation_id).status != AutomationStatus.PAUSED:
        raise StateConflict("status", "Pause the automation before moving its steps (nobody moves on meanwhile), "
                                      "then start it again.")
    if direction not in ("up", "down"):
        raise ValidationError("direction", "up or down.")
    ordered = steps(automation_id)
    index = ordered.index(step)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(ordered):
        raise ValidationError("direction", Message("It is the first step already.") if direction == "up"
                              else Message("It is the last step already."))
    upper, lower = sorted((step, ordered[other_index]), key=lambda s: s.position)
    if _engagement_branch(lower) and lower.params.get("step_id") == upper.id:
        raise StateConflict("step", "The branch at step %(position)s asks about the email just above it: it must "
                                    "stay after that email.", position=lower.position)
    _move_enrollments(automation_id, upper, lower)
    upper.position, lower.position = lower.position, upper.position  # their params (and versions) stay
    db.session.commit()
    return step


def _move_enrollments(automation_id: int, upper: AutomationStep, lower: AutomationStep) -> None:
    """Before `upper` and `lower` swap places: who ran `upper` but not `lower` is set to run `lower`
    next (at `upper`'s place) and to pass over `upper`; who was about to run `upper` is now about
    to run `lower`."""
    active = (Enrollment.automation_id == automation_id, Enrollment.state == EnrollmentState.ACTIVE)
    # Waits for a batch a runner took just before the pause (PostgreSQL; SQLite has one writer at
    # a time), so the next statement sees where it left everyone.
    db.session.execute(select(Enrollment.id).where(*active, Enrollment.position < lower.position)
                       .with_for_update()).all()
    for enrollment in db.session.scalars(select(Enrollment).where(
            *active, Enrollment.position >= upper.position, Enrollment.position < lower.position)):
        enrollment.position = upper.position - 1
        enrollment.done_ahead = [*(enrollment.done_ahead or []), upper.id]
        enrollment.current_step_id = lower.id
    db.session.execute(sql_update(Enrollment).where(
        *active, Enrollment.current_step_id == upper.id, Enrollment.position < upper.position)
        .values(current_step_id=lower.id).execution_options(synchronize_session=False))
