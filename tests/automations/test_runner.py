"""The runner in this process (the database is real: SQLite or PostgreSQL): triggers enrol,
each step runs once, pause holds, edits reach only those not there yet, branches decide,
waits until a time of day read the subscriber's timezone."""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import AutomationEvent, ConsentSource, Enrollment, EnrollmentState, OptIn, StepExecution
from newsletter.models.base import utcnow
from newsletter.services.audience import gdpr, lists, subscribers, subscriptions
from newsletter.services.automations import automations, entry, report, runner
from newsletter.services.errors import ValidationError

from .conftest import (
    FOLLOW_UP,
    WELCOME,
    address,
    automation_mail,
    enrollments,
    executions,
    make_automation,
    make_list,
    tick,
)

WAIT_A_DAY = {"kind": "wait", "params": {"minutes": 24 * 60}}


def join(app, list_id: int, email: str, **extra) -> int:
    with app.app_context():
        return subscriptions.subscribe(email, [list_id], source=ConsentSource.ADMIN, confirmed=True,
                                       **extra).subscriber_id


def test_joining_a_list_enrols_and_the_email_is_queued_once(app):
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WELCOME])
    email = address("ana")
    join(app, list_id, email, name="Ana")
    first = tick(app)
    assert len(first.notification_ids) == 1 and first.ran == 1
    [mail] = automation_mail(app, email)
    assert mail.subject == "Welcome Ana" and email in mail.html and mail.status.value == "queued"
    assert ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click") in [tuple(h) for h in mail.headers]
    tick(app)
    tick(app)
    [enrollment] = enrollments(app, automation_id)
    assert enrollment.state == EnrollmentState.COMPLETED and len(automation_mail(app)) == 1


def test_joining_again_and_repeated_events_enrol_once(app):
    list_id = make_list(app)
    # Not active until Bo is back: the session's real runner (on the transactional worker, every
    # second) would otherwise run the step while Bo had left, and rightly exit instead of mailing.
    automation_id = make_automation(app, list_id, [WELCOME], active=False)
    email = address("bo")
    subscriber_id = join(app, list_id, email)
    with app.app_context():
        subscriptions.unsubscribe(subscriber_id, [list_id])
    join(app, list_id, email)  # a second "subscribed" event for the same person
    with app.app_context():
        automations.set_status(automation_id, "active")
    tick(app)
    assert len(enrollments(app, automation_id)) == 1 and len(automation_mail(app, email)) == 1


def test_running_the_executor_twice_after_a_crash_queues_once(app):
    """A runner whose advance was lost (as if it died after queueing the email but before moving
    the enrollment on; in the code both commit together): running the step again finds its
    execution row, and the whole batch rolls back without queueing a second email."""
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WELCOME])
    email = address("cy")
    join(app, list_id, email)
    tick(app)
    tick(app)
    assert len(automation_mail(app, email)) == 1
    with app.app_context():
        automations.set_status(automation_id, "paused")
        # The lost advance: due again at the step it already ran.
        db.session.execute(update(Enrollment).values(position=0, next_run_at=utcnow(), state=EnrollmentState.ACTIVE))
        db.session.commit()
        automations.set_status(automation_id, "active")
        result = runner.RunResult()
        runner.run_batch(10, 10, result)
        db.session.rollback()
        # Unless the session's beat took it first (and hit the same wall): either way, nothing new.
        assert result.notification_ids == [] and (result.conflicts == 1 or result.ran == 0)
        assert db.session.scalar(select(Enrollment.position)) == 0
        automations.set_status(automation_id, "paused")  # leave the stuck row alone for the rest of the session
    assert [m.subject for m in automation_mail(app, email)] == ["Welcome"] and executions(app) == 1


def test_pausing_holds_everyone_where_they_are(app):
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WELCOME, WAIT_A_DAY, FOLLOW_UP])
    emails = [address(f"p{i}") for i in range(3)]
    for email in emails:
        join(app, list_id, email)
    tick(app)
    tick(app)  # the welcome for the three, then their day's wait begins
    assert [e.position for e in enrollments(app, automation_id)] == [2, 2, 2]
    with app.app_context():
        automations.set_status(automation_id, "paused")
        db.session.execute(update(Enrollment).values(next_run_at=utcnow()))  # the day passes
        db.session.commit()
    join(app, list_id, address("late"))  # enters while paused: held at the start
    assert tick(app).ran == 0
    assert sorted(e.position for e in enrollments(app, automation_id)) == [0, 2, 2, 2]
    assert len(automation_mail(app)) == 3
    with app.app_context():
        automations.set_status(automation_id, "active")
    tick(app)
    tick(app)
    assert len(automation_mail(app)) == 3 + 3 + 1  # the follow-ups, the late one's welcome (its day starts)


def test_editing_a_step_reaches_only_those_who_have_not_run_it(app):
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WELCOME, WAIT_A_DAY, FOLLOW_UP])
    early, late = address("early"), address("late")
    join(app, list_id, early)
    tick(app)
    tick(app)  # early: welcome sent, now waiting a day
    with app.app_context():
        steps = automations.steps(automation_id)
        automations.edit_step(automation_id, steps[0].id, {"subject": "Welcome, v2", "text": "New text"})
        automations.edit_step(automation_id, steps[1].id, {"minutes": 1})
        automations.edit_step(automation_id, steps[2].id, {"subject": "Follow-up, v2", "text": "New"})
    join(app, list_id, late)
    tick(app)
    tick(app)
    [early_welcome] = automation_mail(app, early)
    [late_welcome] = automation_mail(app, late)
    assert early_welcome.subject == "Welcome" and late_welcome.subject == "Welcome, v2"
    waits = {e.subscriber_id: e.next_run_at for e in enrollments(app, automation_id)}
    assert max(waits.values()) - min(waits.values()) > timedelta(hours=23)  # early keeps its day, late got 1 minute
    with app.app_context():  # the day passes for both
        db.session.execute(update(Enrollment).values(next_run_at=utcnow()))
        db.session.commit()
    tick(app)
    assert [m.subject for m in automation_mail(app, early)] == ["Welcome", "Follow-up, v2"]


def test_a_branch_continues_skips_or_exits_by_segment_rules(app):
    list_id = make_list(app)
    vip = {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "equals", "value": "pro"}]}
    skip = make_automation(app, list_id, [{"kind": "branch", "params": {"rules": vip, "on_false": "skip"}},
                                          WELCOME, FOLLOW_UP])
    pro, free = address("pro"), address("free")
    join(app, list_id, pro, attributes={"plan": "pro"})
    join(app, list_id, free, attributes={"plan": "free"})
    for _ in range(4):
        tick(app)
    assert [m.subject for m in automation_mail(app, pro)] == ["Welcome", "Follow-up"]
    assert [m.subject for m in automation_mail(app, free)] == ["Follow-up"]
    assert {e.state for e in enrollments(app, skip)} == {EnrollmentState.COMPLETED}
    with app.app_context():
        built = report.build(skip)
    assert (built.entered, built.completed, built.steps[0].outcomes) == (2, 2, {"continued": 1, "skipped": 1})


def test_an_attribute_change_and_an_api_event_enrol(app):
    list_id = make_list(app)
    on_plan = make_automation(app, list_id, [WELCOME], trigger="attribute_changed", key="plan")
    on_order = make_automation(app, list_id, [FOLLOW_UP], trigger="api_event", key="order.placed")
    email = address("dee")
    subscriber_id = join(app, list_id, email)
    with app.app_context():
        subscribers.update(subscriber_id, attributes={"plan": "pro"})
        first, created = entry.record_api_event("order.placed", email=email, idempotency_key="k-1")
        again, created_again = entry.record_api_event("order.placed", subscriber_id=subscriber_id,
                                                      idempotency_key="k-1")
        assert created and not created_again and again.id == first.id
        with pytest.raises(ValidationError):
            entry.record_api_event("bad name!", email=email)
    tick(app)
    assert len(enrollments(app, on_plan)) == 1 and len(enrollments(app, on_order)) == 1
    assert sorted(m.subject for m in automation_mail(app, email)) == ["Follow-up", "Welcome"]
    with app.app_context():
        assert db.session.scalar(select(AutomationEvent.processed).where(AutomationEvent.idempotency_key == "k-1"))


def test_a_date_attribute_enrols_once_a_year(app):
    list_id = make_list(app)
    birthday = make_automation(app, list_id, [WELCOME], trigger="date", key="birthday")
    today = utcnow()
    join(app, list_id, address("bday"), attributes={"birthday": f"1990-{today:%m-%d}"})
    join(app, list_id, address("other"), attributes={"birthday": "1990-02-30" if today.month != 2 else "1990-07-30"})
    with app.app_context():
        assert entry.enrol_dates(today) == 1
        assert entry.enrol_dates(today) == 0  # the same year again: nobody twice
        assert entry.enrol_dates(today.replace(year=today.year + 1)) == 1  # next year's birthday
    assert {e.scope for e in enrollments(app, birthday)} == {str(today.year), str(today.year + 1)}


def test_the_send_budget_leaves_the_rest_due(app):
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WELCOME])
    for i in range(5):
        join(app, list_id, address(f"b{i}"))
    with app.app_context():
        while entry.ingest():
            pass
        first = runner.run_due(batch_size=2, send_budget=3, max_seconds=10)
    assert len(first.notification_ids) <= 3  # fewer if the session's beat took some
    tick(app)
    assert len(automation_mail(app)) == 5 and len(enrollments(app, automation_id)) == 5


@pytest.mark.parametrize("kind, params, field", [
    ("send", {"subject": "", "html": "x"}, "params.subject"),
    ("send", {"subject": "Hi", "html": "{{ ''.__class__ }}"}, "params.html"),
    ("send", {"subject": "Hi {% if %}", "html": "x"}, "params.subject"),
    ("wait", {"minutes": -1}, "params.minutes"),
    ("wait", {"at": "25:00"}, "params.at"),
    ("wait", {"minutes": 5, "timezone": "Nowhere/City"}, "params.timezone"),
    ("branch", {"rules": {"match": "all", "rules": [{"type": "nope"}]}}, "params.rules"),
    ("teleport", {}, "kind"),
])
def test_bad_steps_are_refused_with_their_field(app, kind, params, field):
    list_id = make_list(app)
    with app.app_context(), pytest.raises(ValidationError) as refused:
        automations.create("Bad", "subscribed", str(list_id), [{"kind": kind, "params": params}])
    assert refused.value.field.startswith(field)


def test_erasure_removes_the_events_and_ends_the_enrollments(app):
    list_id = make_list(app)
    automation_id = make_automation(app, list_id, [WAIT_A_DAY, WELCOME], trigger="api_event", key="order.placed")
    email = address("gone")
    subscriber_id = join(app, list_id, email)
    with app.app_context():
        entry.record_api_event("order.placed", subscriber_id=subscriber_id, payload={"address": "1 Main St"})
    tick(app)
    with app.app_context():
        gdpr.erase_subscriber(subscriber_id)
        assert db.session.scalar(select(AutomationEvent).where(AutomationEvent.subscriber_id == subscriber_id)) is None
    assert [e.state for e in enrollments(app, automation_id)] == [EnrollmentState.EXITED]



@pytest.mark.parametrize("step_zone", [None, "Europe/Lisbon"])
def test_a_wait_until_a_time_of_day_reads_each_subscribers_own_timezone(app, step_zone):
    """"90 minutes, then until 09:00" ends at the first 09:00 on each subscriber's own wall clock
    (attribute `timezone`) at least 90 minutes after the wait began; without that attribute, or
    with a name that is no zone, on the step's clock (UTC when the step names none). Checked
    against the runner's own clock: the execution row holds the `now` it ran the wait with."""
    list_id = make_list(app)
    params = {"minutes": 90, "at": "09:00", **({"timezone": step_zone} if step_zone else {})}
    automation_id = make_automation(app, list_id, [{"kind": "wait", "params": params}, WELCOME], active=False)
    fallback = ZoneInfo(step_zone or "UTC")
    given = {"Asia/Tokyo": ZoneInfo("Asia/Tokyo"), "America/New_York": ZoneInfo("America/New_York"),
             "Australia/Adelaide": ZoneInfo("Australia/Adelaide"),  # half an hour off the full hours
             None: fallback, "Mars/Olympus_Mons": fallback}
    zones = {join(app, list_id, address("tz"), attributes={"timezone": name} if name else {}): zone
             for name, zone in given.items()}
    with app.app_context():
        automations.set_status(automation_id, "active")
        wait_id, welcome_id = [s.id for s in automations.steps(automation_id)]
    tick(app)
    waiting = {e.subscriber_id: e for e in enrollments(app, automation_id)}
    with app.app_context():
        ran = {subscriber_id: (step_id, outcome, at) for subscriber_id, step_id, outcome, at in db.session.execute(
            select(Enrollment.subscriber_id, StepExecution.step_id, StepExecution.outcome, StepExecution.created_at)
            .join(StepExecution, StepExecution.enrollment_id == Enrollment.id)
            .where(Enrollment.automation_id == automation_id))}
    assert set(waiting) == set(zones) == set(ran)  # one execution each: the wait
    for subscriber_id, zone in zones.items():
        step_id, outcome, began = ran[subscriber_id]
        enrollment = waiting[subscriber_id]
        assert (step_id, outcome, enrollment.current_step_id) == (wait_id, "waited", welcome_id)
        due, earliest = enrollment.next_run_at, began + timedelta(minutes=90)
        local = due.astimezone(zone)
        day_before = datetime.combine(local.date() - timedelta(days=1), time(9, 0), tzinfo=zone)
        assert local.time() == time(9, 0), (zone, local)
        assert day_before < earliest <= due, (zone, earliest, local)  # the first 09:00 from then on
    assert not {m.subscriber_id for m in automation_mail(app)} & set(zones)  # nobody mailed before their 09:00
    with app.app_context():  # no 09:00 comes due later in the session (it may run past one)
        automations.set_status(automation_id, "paused")


def test_a_confirmed_trigger_fires_at_once_on_single_opt_in_and_admin_additions(app):
    """No confirmation email in between: a single opt-in list's form signup and an admin's addition
    to a double opt-in list are confirmed memberships at once (the email link: test_pipeline.py)."""
    with app.app_context():
        single = lists.create("Single", OptIn.SINGLE).id
        double = lists.create("Double", OptIn.DOUBLE).id
    on_single = make_automation(app, single, [WELCOME], trigger="confirmed")
    on_double = make_automation(app, double, [WELCOME], trigger="confirmed")
    form, admin, pending = address("form"), address("admin"), address("pending")
    with app.app_context():
        subscriptions.subscribe(form, [single], source=ConsentSource.FORM)
        subscriptions.subscribe(admin, [double], source=ConsentSource.ADMIN, confirmed=True)
        subscriptions.subscribe(pending, [double], source=ConsentSource.FORM)  # waits for its link
    tick(app)
    assert sorted(m.email for m in automation_mail(app) if m.email in (form, admin, pending)) == sorted([form, admin])
    assert len(enrollments(app, on_single)) == len(enrollments(app, on_double)) == 1
