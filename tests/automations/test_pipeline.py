"""Automations end to end on the session's real workers: beat runs them from the database, the
transactional worker sends over SMTP to the recording server, the API drives them.

Each subscriber gets each email exactly once (the server counts per recipient), a repeated API
event with the same idempotency key enrols once, confirming a double opt-in enrols once, pausing
holds, resuming lets them go on, an edited step reaches only those who have not run it.
"""
from __future__ import annotations

import email
import email.policy
import re
import time

from sqlalchemy import func, select, update

from newsletter.extensions import db
from newsletter.models import (
    AutomationEvent,
    ConsentSource,
    Enrollment,
    EnrollmentState,
    OptIn,
    StepExecution,
    Subscriber,
)
from newsletter.models.base import utcnow
from newsletter.services.audience import lists, subscriptions
from newsletter.services.engagement.classify import CLICK_TOO_SOON
from tests.support.net import wait_for

from .conftest import address, make_list

STEPS = [{"kind": "send", "params": {"subject": "Welcome {{ subscriber.name }}", "text": "Hello!"}},
         {"kind": "branch", "params": {"rules": {"match": "all", "rules": [
             {"type": "attribute", "key": "plan", "op": "equals", "value": "pro"}]}, "on_false": "exit"}},
         {"kind": "send", "params": {"subject": "Pro tips", "html": "<p>For pros</p>"}}]


def create(api, trigger: str, key: str, steps=STEPS) -> int:
    response = api.post("/api/v1/automations", json={"name": "Welcome", "trigger": trigger, "trigger_key": key,
                                                     "steps": steps})
    assert response.status_code == 201, response.get_json()
    automation_id = response.get_json()["id"]
    assert api.patch(f"/api/v1/automations/{automation_id}", json={"status": "active"}).status_code == 200
    return automation_id


def join(app, list_id: int, email: str, **extra) -> int:
    with app.app_context():
        return subscriptions.subscribe(email, [list_id], source=ConsentSource.ADMIN, confirmed=True,
                                       **extra).subscriber_id


def subjects(smtp_server, to: str) -> list[str]:
    return sorted(email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
                  for raw in smtp_server.received.get(to, []))


def report(api, automation_id: int) -> dict:
    response = api.get(f"/api/v1/automations/{automation_id}/report")
    assert response.status_code == 200
    return response.get_json()


def test_joining_a_list_sends_each_step_once_and_the_report_counts_it(
        app, api, worker, transactional_worker, beat, smtp_server):
    list_id = make_list(app)
    automation_id = create(api, "subscribed", str(list_id))
    pro, free = address("pro"), address("free")
    join(app, list_id, pro, name="Pat", attributes={"plan": "pro"})
    join(app, list_id, free, name="Fay")
    wait_for(lambda: len(smtp_server.received.get(pro, [])) >= 2 and smtp_server.received.get(free), 60,
             message="the welcome and the pro tips")
    time.sleep(3)  # a few more beats: nothing more may arrive
    assert subjects(smtp_server, pro) == ["Pro tips", "Welcome Pat"]
    assert subjects(smtp_server, free) == ["Welcome Fay"]
    counted = wait_for(lambda: (r := report(api, automation_id))["sends"].get("sent") == 3 and r, 30,
                       message="the report to count three sent")
    assert (counted["entered"], counted["completed"], counted["exited"], counted["active"]) == (2, 1, 1, 0)
    assert [s["outcomes"] for s in counted["steps"]] == [{"queued": 2}, {"continued": 1, "exited": 1}, {"queued": 1}]


def test_an_api_event_repeated_with_its_key_enrols_once(app, api, worker, transactional_worker, beat,
                                                        smtp_server):
    list_id = make_list(app)
    create(api, "api_event", "trial.started", steps=[STEPS[0]])
    to = address("trial")
    join(app, list_id, to, name="Tia")
    for _ in range(3):
        response = api.post("/api/v1/events", json={"name": "trial.started", "email": to,
                                                    "idempotency_key": "trial-1"})
        assert response.status_code == 202, response.get_json()
    other = api.post("/api/v1/events", json={"name": "trial.ended", "email": to, "idempotency_key": "trial-1"})
    assert other.status_code == 409
    unknown = api.post("/api/v1/events", json={"name": "trial.started", "email": address("nobody")})
    assert unknown.status_code == 422 and unknown.get_json()["errors"][0]["field"] == "email"
    wait_for(lambda: smtp_server.received.get(to), 60, message="the email")
    time.sleep(3)
    assert subjects(smtp_server, to) == ["Welcome Tia"]


def test_pausing_holds_and_resuming_goes_on(app, api, worker, transactional_worker, beat, smtp_server):
    list_id = make_list(app)
    automation_id = create(api, "subscribed", str(list_id), steps=[STEPS[0]])
    assert api.patch(f"/api/v1/automations/{automation_id}", json={"status": "paused"}).status_code == 200
    to = address("held")
    join(app, list_id, to, name="Hal")
    time.sleep(4)  # four beats
    assert not smtp_server.received.get(to)
    held = report(api, automation_id)
    assert (held["entered"], held["active"], held["steps"][0]["waiting"]) == (1, 1, 1)
    assert api.patch(f"/api/v1/automations/{automation_id}", json={"status": "active"}).status_code == 200
    wait_for(lambda: smtp_server.received.get(to), 60, message="the email after resuming")
    assert subjects(smtp_server, to) == ["Welcome Hal"]


def test_bad_input_is_a_422_naming_the_field(app, api):
    list_id = make_list(app)
    bad_step = api.post("/api/v1/automations", json={"name": "x", "trigger": "subscribed", "trigger_key": str(list_id),
                                                     "steps": [{"kind": "wait", "params": {"at": "9am"}}]})
    assert bad_step.status_code == 422 and bad_step.get_json()["errors"][0]["field"] == "params.at"
    no_list = api.post("/api/v1/automations", json={"name": "x", "trigger": "subscribed", "trigger_key": "99999999999"})
    assert no_list.status_code == 422 and no_list.get_json()["errors"][0]["field"] == "trigger_key"
    rules = api.post("/api/v1/automations", json={"name": "x", "trigger": "api_event", "trigger_key": "a",
                                                  "steps": [{"kind": "branch", "params": {"rules": {"match": "x"}}}]})
    assert rules.status_code == 422, rules.get_json()


def test_a_branch_on_clicked_follows_a_real_click_in_the_sent_email(
        app, api, client, worker, transactional_worker, beat, smtp_server):
    """The email as the SMTP server received it: its tracked link, followed like a browser (after
    the classifier's "too soon" seconds), decides the branch after the wait."""
    list_id = make_list(app)
    steps = [{"kind": "send", "params": {"subject": "Pricing", "html": '<p><a href="https://example.com/p">See</a></p>'}},
             {"kind": "wait", "params": {"minutes": 60}},
             {"kind": "branch", "params": {"condition": "clicked", "on_false": "exit"}},
             {"kind": "send", "params": {"subject": "Thanks for looking", "text": "More"}}]
    response = api.post("/api/v1/automations", json={"name": "Nudge", "trigger": "subscribed",
                                                     "trigger_key": str(list_id), "tracking": True, "steps": steps})
    assert response.status_code == 201, response.get_json()
    automation_id = response.get_json()["id"]
    assert api.patch(f"/api/v1/automations/{automation_id}", json={"status": "active"}).status_code == 200
    clicker, idle = address("clicker"), address("idle")
    join(app, list_id, clicker)
    join(app, list_id, idle)
    wait_for(lambda: smtp_server.received.get(clicker) and smtp_server.received.get(idle), 60, message="the emails")
    message = email.message_from_bytes(smtp_server.received[clicker][0], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    [link] = re.findall(r'href="https?://[^/"]+(/ac/[^"]+)"', html)
    assert re.search(r'src="https?://[^/"]+/ao/[^"]+"', html)
    time.sleep(CLICK_TOO_SOON + 1)  # a person reads before clicking; sooner is counted as a machine
    followed = client.get(link, headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                                         "Accept": "text/html"})
    assert followed.status_code == 302 and followed.headers["Location"] == "https://example.com/p"
    with app.app_context():  # the hour passes
        db.session.execute(update(Enrollment).where(Enrollment.automation_id == automation_id,
                                                    Enrollment.state == EnrollmentState.ACTIVE)
                           .values(next_run_at=utcnow()))
        db.session.commit()
    wait_for(lambda: len(smtp_server.received.get(clicker, [])) >= 2, 60, message="the thanks")
    counted = wait_for(lambda: (r := report(api, automation_id))["active"] == 0 and r, 30,
                       message="both to leave")
    time.sleep(3)
    assert subjects(smtp_server, clicker) == ["Pricing", "Thanks for looking"]
    assert subjects(smtp_server, idle) == ["Pricing"]
    assert counted["steps"][2]["outcomes"] == {"continued": 1, "exited": 1}
    assert counted["steps"][0]["engagement"] == {"opened": 1, "clicked": 1}


def body(raw: bytes) -> str:
    return email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",)).get_content()


def day_passes(app, automation_id: int, *emails: str) -> None:
    """Their wait ends now (all still in the automation when no address is named)."""
    with app.app_context():
        query = update(Enrollment).where(Enrollment.automation_id == automation_id,
                                         Enrollment.state == EnrollmentState.ACTIVE)
        if emails:
            query = query.where(Enrollment.subscriber_id.in_(
                select(Subscriber.id).where(Subscriber.email.in_(emails))))
        db.session.execute(query.values(next_run_at=utcnow()))
        db.session.commit()


def waiting_for(app, automation_id: int, step_id: int, count: int) -> None:
    """Until `count` enrollments have run everything before `step_id` and wait for it."""
    def ready() -> bool:
        with app.app_context():
            found = db.session.scalar(select(func.count()).select_from(Enrollment).where(
                Enrollment.automation_id == automation_id, Enrollment.state == EnrollmentState.ACTIVE,
                Enrollment.current_step_id == step_id, Enrollment.next_run_at > utcnow()))
            db.session.rollback()
            return found == count
    wait_for(ready, 60, message=f"{count} to wait for step {step_id}")


def test_editing_a_step_on_the_running_automation_reaches_only_those_who_have_not_run_it(
        app, api, worker, transactional_worker, beat, smtp_server):
    """Send, wait a day, send: the second email is edited while the automation runs (beat and the
    transactional worker go on meanwhile). Who had it gets the old one, once; who waits for it and
    who enters later get the new one, once; nobody gets it twice. The day passes by hand."""
    list_id = make_list(app)
    steps = [{"kind": "send", "params": {"subject": "Welcome", "text": "Hello"}},
             {"kind": "wait", "params": {"minutes": 24 * 60}},
             {"kind": "send", "params": {"subject": "Tips", "text": "Old tips"}}]
    automation_id = create(api, "subscribed", str(list_id), steps=steps)
    tips_id = [s["id"] for s in api.get(f"/api/v1/automations/{automation_id}").get_json()["steps"]][2]
    early, middle, late = address("early"), address("middle"), address("late")
    join(app, list_id, early)
    waiting_for(app, automation_id, tips_id, 1)
    day_passes(app, automation_id, early)
    wait_for(lambda: len(smtp_server.received.get(early, [])) == 2, 60, message="early's tips")
    join(app, list_id, middle)
    waiting_for(app, automation_id, tips_id, 1)  # middle, a day from the tips

    edited = api.patch(f"/api/v1/automations/{automation_id}/steps/{tips_id}",
                       json={"params": {"subject": "Tips, v2", "text": "New tips"}})
    assert edited.status_code == 200 and edited.get_json()["version"] == 2, edited.get_json()
    join(app, list_id, late)
    waiting_for(app, automation_id, tips_id, 2)  # middle and late
    day_passes(app, automation_id)
    counted = wait_for(lambda: (r := report(api, automation_id))["sends"].get("sent") == 6 and r, 60,
                       message="six emails sent")
    assert (counted["entered"], counted["completed"], counted["active"]) == (3, 3, 0)
    assert subjects(smtp_server, early) == ["Tips", "Welcome"]
    assert subjects(smtp_server, middle) == subjects(smtp_server, late) == ["Tips, v2", "Welcome"]
    tips = {to: [body(raw) for raw in smtp_server.received[to] if b"Tips" in raw] for to in (early, middle, late)}
    assert [text.strip() for text in tips[early]] == ["Old tips"]
    assert [text.strip() for text in tips[middle]] == [text.strip() for text in tips[late]] == ["New tips"]
    with app.app_context():  # the version each ran, in the execution rows
        versions = sorted(db.session.execute(select(Subscriber.email, StepExecution.step_version)
                                             .join(Enrollment, Enrollment.id == StepExecution.enrollment_id)
                                             .join(Subscriber, Subscriber.id == Enrollment.subscriber_id)
                                             .where(StepExecution.step_id == tips_id)).all())
    assert versions == sorted([(early, 1), (middle, 2), (late, 2)])
    assert counted["steps"][1]["outcomes"] == {"waited": 3}



def taken(app, to: str) -> list[str]:
    """The kinds of the automation events recorded for this address, once beat has taken them all."""
    def all_taken() -> list[str] | None:
        with app.app_context():
            found = db.session.execute(select(AutomationEvent.kind, AutomationEvent.processed)
                                       .join(Subscriber, Subscriber.id == AutomationEvent.subscriber_id)
                                       .where(Subscriber.email == to).order_by(AutomationEvent.id)).all()
            db.session.rollback()
            return [kind.value for kind, _ in found] if all(processed for _, processed in found) else None
    return wait_for(all_taken, 60, message="beat to take the events")


def test_confirming_a_double_opt_in_enrols_once_and_joining_alone_does_not(
        app, api, client, worker, transactional_worker, beat, smtp_server):
    """A `confirmed` automation on a double opt-in list: the signup form enrols nobody; the link in
    the confirmation email (as the SMTP server received it) enrols once; a second click does not."""
    with app.app_context():
        list_id = lists.create("Opt-in", OptIn.DOUBLE, public=True).id
    automation_id = create(api, "confirmed", str(list_id),
                           steps=[{"kind": "send", "params": {"subject": "Thanks for confirming", "text": "Hi"}}])
    to = address("optin")
    assert client.post(f"/subscribe/{list_id}", data={"email": to, "name": "Ola"}).status_code == 302
    wait_for(lambda: smtp_server.received.get(to), 60, message="the confirmation email")
    assert taken(app, to) == ["subscribed"]
    assert report(api, automation_id)["entered"] == 0
    link = re.search(r"https?://[^/\s]+(/confirm/\S+)", body(smtp_server.received[to][0])).group(1)
    assert client.get(link).status_code == 200
    wait_for(lambda: len(smtp_server.received.get(to, [])) == 2, 60, message="the automation's email")
    assert client.get(link).status_code == 200  # the second click: still confirmed, no new event
    assert taken(app, to) == ["subscribed", "confirmed"]
    counted = wait_for(lambda: (r := report(api, automation_id))["sends"].get("sent") == 1 and r, 30,
                       message="the report to count the email sent")
    assert (counted["entered"], counted["completed"], counted["active"]) == (1, 1, 0)
    assert len(smtp_server.received[to]) == 2 and subjects(smtp_server, to).count("Thanks for confirming") == 1
