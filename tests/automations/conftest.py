"""Helpers for the automation tests: an automation on a list, its rows, a run."""
from __future__ import annotations

import uuid

from sqlalchemy import func, insert, select

from newsletter.extensions import db
from newsletter.models import (
    Automation,
    AutomationEvent,
    AutomationStatus,
    Enrollment,
    EnrollmentState,
    Notification,
    NotificationKind,
    OptIn,
    StepExecution,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.models.base import utcnow
from newsletter.services.audience import lists
from newsletter.services.automations import automations, entry, runner
from tests.api.conftest import api, api_key  # noqa: F401  (the API fixtures, for these tests too)
from tests.support.net import wait_for

WELCOME = {"kind": "send", "params": {"subject": "Welcome {{ subscriber.name }}",
                                      "html": "<p>Hi {{ subscriber.email }}</p>"}}
FOLLOW_UP = {"kind": "send", "params": {"subject": "Follow-up", "text": "Still there? {{ unsubscribe_url }}"}}


def address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.org"


def make_list(app, name: str = "Welcome list") -> int:
    with app.app_context():
        return lists.create(name, OptIn.SINGLE).id


def make_automation(app, list_id: int, steps: list[dict], active: bool = True, trigger: str = "subscribed",
                    key: str | None = None) -> int:
    with app.app_context():
        automation = automations.create("Onboarding", trigger, key if key is not None else str(list_id), steps)
        if active:
            automations.set_status(automation.id, "active")
        return automation.id


def confirmed_on_list(list_id: int, emails: list[str], name: str) -> None:
    """Confirmed subscribers with these addresses on the list, inserted in bulk (no events: the
    caller's bulk add to the automation's list makes those); the caller commits."""
    now = utcnow()
    db.session.execute(insert(Subscriber), [
        {"email": e, "name": name, "attributes": {}, "status": SubscriberStatus.CONFIRMED,
         "created_at": now, "updated_at": now, "confirmed_at": now} for e in emails])
    ids = db.session.scalars(select(Subscriber.id).where(Subscriber.email.in_(emails))).all()
    db.session.execute(insert(Subscription), [
        {"subscriber_id": i, "list_id": list_id, "status": SubscriptionStatus.CONFIRMED,
         "created_at": now, "updated_at": now} for i in ids])


def tick(app, batch_size: int = 500, send_budget: int = 1000) -> runner.RunResult:
    """What one beat run does, in this process, then `settle`: when these tests share a session
    with the real beat (test_pipeline.py, other directories), it may run some steps first."""
    with app.app_context():
        while entry.ingest():
            pass
        result = runner.run_due(batch_size, send_budget, 10.0)
    settle(app)
    return result


def settle(app, timeout: float = 60) -> None:
    """Until no event waits to be turned into enrollments and no step of an active automation is due."""
    def quiet() -> bool:
        with app.app_context():
            running = select(Automation.id).where(Automation.status == AutomationStatus.ACTIVE)
            events = db.session.scalar(select(func.count()).select_from(AutomationEvent)
                                       .where(AutomationEvent.processed.is_(False)))
            due = db.session.scalar(select(func.count()).select_from(Enrollment).where(
                Enrollment.state == EnrollmentState.ACTIVE, Enrollment.next_run_at <= utcnow(),
                Enrollment.automation_id.in_(running)))
            db.session.rollback()
            return not events and not due
    wait_for(quiet, timeout, interval=0.2, message="the automations to settle")


def automation_mail(app, email: str | None = None) -> list[Notification]:
    with app.app_context():
        query = select(Notification).where(Notification.kind == NotificationKind.AUTOMATION).order_by(Notification.id)
        if email:
            query = query.where(Notification.email == email)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
        return found


def enrollments(app, automation_id: int) -> list[Enrollment]:
    with app.app_context():
        found = list(db.session.scalars(select(Enrollment).where(Enrollment.automation_id == automation_id)
                                        .order_by(Enrollment.id)))
        db.session.expunge_all()
        return found


def executions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(StepExecution)) or 0
