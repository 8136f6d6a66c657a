"""Automations and their steps: create, edit, pause and resume, with every value checked first.

Steps are edited in place (their `version` goes up): an enrollment that has not reached a step
yet runs it as it is when its turn comes, one that ran it already is not touched, and one
already waiting after a wait step keeps the time it was given.
"""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select

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
from . import timing

EVENT_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
MAX_WAIT_MINUTES = 366 * 24 * 60
ON_FALSE = ("exit", "skip")  # a branch whose condition is false: leave, or skip the next step
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
        raise ValidationError("trigger", f"One of {', '.join(t.value for t in TriggerKind)}.") from None
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
        raise ValidationError("kind", f"One of {', '.join(k.value for k in StepKind)}.") from None
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
        raise ValidationError("params.minutes", f"Whole minutes from 0 to {MAX_WAIT_MINUTES}.")
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
    rules = segments.validated(params.get("rules"), prefix="params.rules")
    on_false = params.get("on_false") or "exit"
    if on_false not in ON_FALSE:
        raise ValidationError("params.on_false", "exit or skip.")
    return {"rules": rules, "on_false": on_false}


# Changes --------------------------------------------------------------------------------------

def create(name: Any, trigger: Any, trigger_key: Any, step_list: list[dict[str, Any]] | None = None) -> Automation:
    """A paused automation with its steps (resume it to start running them)."""
    kind, key = trigger_of(trigger, trigger_key)
    checked = [step_params(s.get("kind"), s.get("params")) for s in (step_list or [])]
    automation = Automation(name=_name(name), trigger=kind, trigger_key=key, status=AutomationStatus.PAUSED)
    db.session.add(automation)
    db.session.flush()
    for position, (step_kind, params) in enumerate(checked, start=1):
        db.session.add(AutomationStep(automation_id=automation.id, position=position, kind=step_kind, params=params))
    db.session.commit()
    return automation


def update(automation_id: int, name: Any = None, trigger: Any = None, trigger_key: Any = None) -> Automation:
    automation = get(automation_id)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _name(name)
    if trigger is not None or trigger_key is not None:
        changes["trigger"], changes["trigger_key"] = trigger_of(
            trigger if trigger is not None else automation.trigger, trigger_key if trigger_key is not None
            else automation.trigger_key)
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
    get(automation_id)
    step_kind, checked = step_params(kind, params)
    last = db.session.scalar(select(func.max(AutomationStep.position))
                             .where(AutomationStep.automation_id == automation_id)) or 0
    step = AutomationStep(automation_id=automation_id, position=last + 1, kind=step_kind, params=checked)
    db.session.add(step)
    db.session.commit()
    return step


def edit_step(automation_id: int, step_id: int, params: Any) -> AutomationStep:
    """New params for a step (its kind stays): only enrollments that have not run it see them."""
    step = get_step(automation_id, step_id)
    _, step.params = step_params(step.kind, params)
    step.version += 1
    db.session.commit()
    return step


def delete_step(automation_id: int, step_id: int) -> None:
    """Remove a step nobody is about to run; enrollments waiting for it would skip it silently."""
    step = get_step(automation_id, step_id)
    waiting = db.session.scalar(select(func.count()).select_from(Enrollment).where(
        Enrollment.current_step_id == step.id, Enrollment.state == EnrollmentState.ACTIVE)) or 0
    if waiting:
        raise StateConflict("step", f"{waiting:,} subscriber(s) are about to run this step; pause the automation "
                                    "and edit the step instead.")
    db.session.delete(step)
    db.session.commit()
