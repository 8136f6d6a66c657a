"""Re-entry (a subscriber enters again after leaving, after a gap) and step reordering (who runs
what after a move), with the runner in this process on the real database."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from newsletter.extensions import db
from newsletter.models import AutomationEvent, Enrollment, EnrollmentState
from newsletter.models.base import utcnow
from newsletter.services.automations import automations, entry
from newsletter.services.errors import StateConflict, ValidationError

from .conftest import FOLLOW_UP, WELCOME, address, automation_mail, enrollments, make_list, tick
from .test_runner import WAIT_A_DAY, join


def event(app, name: str, email: str, key: str | None = None) -> None:
    with app.app_context():
        entry.record_api_event(name, email=email, idempotency_key=key)


def api_automation(app, steps: list[dict], reentry: bool, gap: int = 0) -> int:
    with app.app_context():
        automation = automations.create("Again", "api_event", "order.placed", steps, reentry=reentry,
                                        reentry_gap_minutes=gap)
        automations.set_status(automation.id, "active")
        return automation.id


def test_by_default_a_subscriber_enters_once_ever(app):
    list_id = make_list(app)
    automation_id = api_automation(app, [WELCOME], reentry=False)
    email = address("once")
    join(app, list_id, email)
    for _ in range(3):
        event(app, "order.placed", email)
        tick(app)
    assert len(enrollments(app, automation_id)) == 1 and len(automation_mail(app, email)) == 1


def test_with_reentry_a_subscriber_enters_again_after_leaving_not_while_in_it(app):
    list_id = make_list(app)
    automation_id = api_automation(app, [WELCOME, WAIT_A_DAY, FOLLOW_UP], reentry=True)
    email = address("again")
    join(app, list_id, email)
    event(app, "order.placed", email)
    tick(app)
    tick(app)  # the welcome, then waiting a day
    event(app, "order.placed", email)  # while still in it: nothing
    tick(app)
    assert len(enrollments(app, automation_id)) == 1
    with app.app_context():  # the day passes: the follow-up, completed
        db.session.execute(update(Enrollment).values(next_run_at=utcnow()))
        db.session.commit()
    tick(app)
    assert [e.state for e in enrollments(app, automation_id)] == [EnrollmentState.COMPLETED]
    event(app, "order.placed", email, key="order-2")
    event(app, "order.placed", email, key="order-3")  # two events in one beat: one entry
    tick(app)
    second = enrollments(app, automation_id)
    assert [e.scope for e in second] == ["", f"r:{second[1].event_id}"] and second[1].state == EnrollmentState.ACTIVE
    # Each enrollment gets its own email once: the ledger's key names the enrollment and the step.
    assert [m.subject for m in automation_mail(app, email)] == ["Welcome", "Follow-up", "Welcome"]
    keys = {m.idempotency_key for m in automation_mail(app, email)}
    assert len(keys) == 3
    with app.app_context():  # the same events processed again (a redelivered beat): nobody enters twice
        db.session.execute(update(AutomationEvent).values(processed=False))
        db.session.commit()
    tick(app)
    assert len(enrollments(app, automation_id)) == 2 and len(automation_mail(app, email)) == 3


def test_the_reentry_gap_counts_from_leaving(app):
    list_id = make_list(app)
    automation_id = api_automation(app, [WELCOME], reentry=True, gap=60)
    email = address("gap")
    join(app, list_id, email)
    event(app, "order.placed", email)
    tick(app)
    tick(app)  # sent, completed just now
    event(app, "order.placed", email)
    tick(app)
    assert len(enrollments(app, automation_id)) == 1  # within the hour: not again
    with app.app_context():  # it left 61 minutes ago
        db.session.execute(update(Enrollment).values(updated_at=utcnow() - timedelta(minutes=61)))
        db.session.commit()
    event(app, "order.placed", email)
    tick(app)
    assert len(enrollments(app, automation_id)) == 2 and len(automation_mail(app, email)) == 2


def test_reentry_settings_are_checked(app):
    with app.app_context():
        for kwargs, field in (({"reentry": "yes"}, "reentry"), ({"reentry_gap_minutes": -1}, "reentry_gap_minutes"),
                              ({"reentry_gap_minutes": 10 ** 9}, "reentry_gap_minutes")):
            with pytest.raises(ValidationError) as refused:
                automations.create("x", "api_event", "a", [], **kwargs)
            assert refused.value.field == field


FIRST = {"kind": "send", "params": {"subject": "First", "text": "1"}}
SECOND = {"kind": "send", "params": {"subject": "Second", "text": "2"}}


def test_a_move_runs_no_step_twice_and_takes_none_from_those_who_had_not_reached_it(app):
    """Steps: First, wait a day, Second. `early` has run First and the wait (waiting for Second);
    `fresh` has run nothing. Second moves up, above the wait: early still gets Second (keeping its
    waiting time) and does not wait again; fresh gets First, Second, then waits."""
    list_id = make_list(app)
    with app.app_context():
        automation_id = automations.create("Move", "subscribed", str(list_id), [FIRST, WAIT_A_DAY, SECOND]).id
        automations.set_status(automation_id, "active")
    early = address("early")
    join(app, list_id, early)
    tick(app)
    tick(app)
    [waiting] = enrollments(app, automation_id)
    assert waiting.position == 2
    with app.app_context():
        first, wait, second = automations.steps(automation_id)
        with pytest.raises(StateConflict) as refused:  # running: pause first
            automations.move_step(automation_id, second.id, "up")
        assert refused.value.field == "status"
        automations.set_status(automation_id, "paused")
        with pytest.raises(ValidationError) as refused:
            automations.move_step(automation_id, first.id, "up")
        assert refused.value.field == "direction"
        automations.move_step(automation_id, second.id, "up")
        assert [s.id for s in automations.steps(automation_id)] == [first.id, second.id, wait.id]
    [moved] = enrollments(app, automation_id)
    assert (moved.current_step_id, moved.done_ahead, moved.next_run_at) == (second.id, [wait.id], waiting.next_run_at)
    fresh = address("fresh")
    join(app, list_id, fresh)
    with app.app_context():
        automations.set_status(automation_id, "active")
        db.session.execute(update(Enrollment).values(next_run_at=utcnow()))  # early's day passes
        db.session.commit()
    for _ in range(3):
        assert tick(app).conflicts == 0
    assert [m.subject for m in automation_mail(app, early)] == ["First", "Second"]
    assert [m.subject for m in automation_mail(app, fresh)] == ["First", "Second"]
    # early completed (the wait it ran is passed over); fresh ran the wait last and waits its day.
    assert [(e.state, e.position) for e in enrollments(app, automation_id)] == [
        (EnrollmentState.COMPLETED, 2), (EnrollmentState.ACTIVE, 3)]


def test_a_branch_stays_after_the_email_it_asks_about(app):
    list_id = make_list(app)
    with app.app_context():
        automation = automations.create("B", "subscribed", str(list_id), [
            FIRST, {"kind": "branch", "params": {"condition": "opened"}}, SECOND], tracking=True)
        first, asks, second = automations.steps(automation.id)
        with pytest.raises(StateConflict):
            automations.move_step(automation.id, asks.id, "up")
        automations.move_step(automation.id, second.id, "up")  # fine: the branch still follows First
        assert [s.id for s in automations.steps(automation.id)] == [first.id, second.id, asks.id]


def test_the_api_moves_a_step_and_names_bad_input(app, api):
    list_id = make_list(app)
    created = api.post("/api/v1/automations", json={"name": "M", "trigger": "subscribed", "trigger_key": str(list_id),
                                                     "steps": [FIRST, SECOND]}).get_json()
    first, second = (s["id"] for s in created["steps"])
    url = f"/api/v1/automations/{created['id']}/steps/{second}/move"
    moved = api.post(url, json={"direction": "up"})
    assert moved.status_code == 200 and moved.get_json()["position"] == 1
    order = [s["id"] for s in api.get(f"/api/v1/automations/{created['id']}").get_json()["steps"]]
    assert order == [second, first]
    sideways = api.post(url, json={"direction": "left"})
    assert sideways.status_code == 422 and sideways.get_json()["errors"][0]["field"] == "direction"
    top = api.post(url, json={"direction": "up"})
    assert top.status_code == 422 and top.get_json()["errors"][0]["field"] == "direction"
    api.patch(f"/api/v1/automations/{created['id']}", json={"status": "active"})
    assert api.post(url, json={"direction": "down"}).status_code == 409
    assert "/api/v1/automations/{automation_id}/steps/{step_id}/move" in api.get("/api/v1/openapi.json").get_json()[
        "paths"]
