"""A deleted automation's enrollment and step ids are never handed out again (SQLite's AUTOINCREMENT,
migration 0023; PostgreSQL's sequences), so a new enrollment's email cannot meet an old email's
ledger key `automation:<enrollment>:<step>` and be taken for a repeat: it is sent."""
from __future__ import annotations

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AutomationStep
from newsletter.services.automations import automations, runner
from newsletter.tasks.notifications import send_notifications
from newsletter.tasks.publish import enqueue
from tests.support.net import wait_for

from .conftest import WELCOME, address, automation_mail, enrollments, make_automation, make_list, tick
from .test_pipeline import join


def _steps(app, automation_id: int) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(AutomationStep.id).where(AutomationStep.automation_id == automation_id)))


def run_and_publish(app) -> None:
    """One beat run: the runner in this process, its emails published to the session's real workers."""
    ids = tick(app).notification_ids
    with app.app_context():
        enqueue(send_notifications, ids)


def welcome(app, smtp_server, list_name: str, tag: str) -> tuple[int, str, int, int]:
    """A welcome automation on a new list, one subscriber joining, one beat run, the email received:
    (automation id, the address, its enrollment id, its step id)."""
    list_id = make_list(app, list_name)
    automation_id = make_automation(app, list_id, [WELCOME])
    email = address(tag)
    join(app, list_id, email, name=tag.title())
    run_and_publish(app)
    [enrollment] = enrollments(app, automation_id)
    [step_id] = _steps(app, automation_id)
    wait_for(lambda: smtp_server.received.get(email), 60, message=f"{tag}'s welcome")
    return automation_id, email, enrollment.id, step_id


def test_ids_of_a_deleted_enrollment_and_step_are_not_reused_and_the_next_email_is_sent(
        app, worker, transactional_worker, smtp_server):
    first, ana, old, old_step = welcome(app, smtp_server, "First", "ana")
    with app.app_context():
        automations.delete(first)  # its step and enrollment go (the newest rows of their tables)
    assert enrollments(app, first) == [] and _steps(app, first) == []
    [ana_mail] = automation_mail(app, ana)  # the ledger keeps the sent email and its key
    assert ana_mail.idempotency_key == runner.idempotency_key(old, old_step)

    # Without AUTOINCREMENT SQLite hands out the deleted ids again: Bo's email would carry Ana's key,
    # the ledger would take it for a repeat and it would never arrive (welcome() waits for it).
    _second, bo, new, new_step = welcome(app, smtp_server, "Second", "bo")
    assert new > old and new_step > old_step
    [bo_mail] = automation_mail(app, bo)
    assert bo_mail.idempotency_key == runner.idempotency_key(new, new_step)
    assert bo_mail.status.value == "sent"
