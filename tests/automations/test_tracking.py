"""Tracked automation emails and branches on opened/clicked, the runner in this process (the
database is real: SQLite or PostgreSQL) and the tracking routes through the app's test client.

A hit's human/machine verdict depends on how long after the email was built it comes (the
classifier's "too soon" rule): the email's own links are followed at once (a machine: too soon),
and the human hits are tokens signed for the same step and enrollment a minute earlier, so no
test sleeps.
"""
from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import AutomationEngagement, AutomationLink, Enrollment, EnrollmentState, Subscriber
from newsletter.models.base import utcnow
from newsletter.services.automations import automations, report, tracking
from newsletter.services.engagement import tokens
from newsletter.services.errors import StateConflict, ValidationError

from .conftest import address, automation_mail, enrollments, make_automation, make_list, tick
from .test_runner import join

BROWSER = {"User-Agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/120.0 Safari/537.36", "Accept": "text/html,*/*"}
LINKED = {"kind": "send", "params": {"subject": "Hello", "html": (
    '<p><a href="https://example.com/pricing">Pricing</a> <a href="mailto:hi@example.org">Mail us</a> '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')}}
WAIT = {"kind": "wait", "params": {"minutes": 60}}
THANKS = {"kind": "send", "params": {"subject": "Thanks for reading", "text": "More"}}


def branch(condition: str, on_false: str = "exit", **extra) -> dict:
    return {"kind": "branch", "params": {"condition": condition, "on_false": on_false, **extra}}


def tracked(app, list_id: int, steps: list[dict]) -> int:
    with app.app_context():
        automation_id = automations.create("Tracked", "subscribed", str(list_id), steps, tracking=True).id
        automations.set_status(automation_id, "active")
    return automation_id


def links_in(html: str) -> dict[str, list[str]]:
    return {"click": re.findall(r'href="([^"]*/ac/[^"]+)"', html), "pixel": re.findall(r'src="([^"]*/ao/[^"]+)"', html)}


def signed(app, purpose: str, step_id: int, enrollment_id: int, link_id: int | None = None) -> str:
    """A token as the email carries, built a minute ago (past the "too soon" rule)."""
    with app.app_context():
        signer = tokens.Signer(step_id, enrollment_id, int(time.time()) - 60, tracking.NAMESPACE)
        return signer.click(link_id) if purpose == "click" else signer.open()


def engagement_rows(app) -> list[tuple]:
    with app.app_context():
        return [(r.enrollment_id, r.kind.value, r.machine, r.reason) for r in db.session.scalars(
            select(AutomationEngagement).order_by(AutomationEngagement.enrollment_id, AutomationEngagement.kind))]


def pass_the_wait(app) -> None:
    with app.app_context():
        db.session.execute(update(Enrollment).where(Enrollment.state == EnrollmentState.ACTIVE)
                           .values(next_run_at=utcnow()))
        db.session.commit()


def test_a_tracked_email_carries_a_pixel_and_signed_links_and_an_untracked_one_none(app, client):
    plain_list, list_id = make_list(app), make_list(app, "Tracked")
    make_automation(app, plain_list, [LINKED])
    reader = address("plain")
    join(app, plain_list, reader)
    tick(app)
    [mail] = automation_mail(app, reader)
    assert links_in(mail.html) == {"click": [], "pixel": []} and 'href="https://example.com/pricing"' in mail.html

    tracked(app, list_id, [LINKED])
    reader = address("tracked")
    join(app, list_id, reader)
    tick(app)
    [mail] = automation_mail(app, reader)
    found = links_in(mail.html)
    assert len(found["click"]) == 1 and len(found["pixel"]) == 1
    assert 'href="mailto:hi@example.org"' in mail.html and "/unsubscribe/" in mail.html  # as written
    assert "example.com/pricing" not in mail.html and "Pricing" in mail.text  # the text part: as written
    path = found["click"][0].split("://", 1)[1].split("/", 1)[1]
    # Followed at once: the redirect works, and so soon after the build it counts as a machine.
    response = client.get("/" + path, headers=BROWSER)
    assert response.status_code == 302 and response.headers["Location"] == "https://example.com/pricing"
    [enrollment] = [e for e in enrollments(app, mail.data["automation_id"])]
    assert engagement_rows(app) == [(enrollment.id, "click", True, "too_soon")]
    with app.app_context():
        token = tokens.load("click", path.rsplit("/", 1)[1], tracking.NAMESPACE)
    assert (token.campaign_id, token.subscriber_id) == (mail.data["step_id"], enrollment.id)
    # A campaign's token (another key) is no automation token, a tampered one neither: 404, nothing recorded.
    with app.app_context():
        campaign_token = tokens.Signer(mail.data["step_id"], enrollment.id, int(time.time()) - 60).open()
    assert client.get(f"/ao/{campaign_token}", headers=BROWSER).status_code == 404
    assert client.get("/" + path[:-2] + "xx", headers=BROWSER).status_code == 404
    assert len(engagement_rows(app)) == 1


def test_a_branch_on_clicked_and_on_opened_counts_human_hits_only(app, client):
    list_id = make_list(app)
    automation_id = tracked(app, list_id, [LINKED, WAIT, branch("clicked", "skip"), THANKS,
                                           branch("opened"), THANKS | {"params": {"subject": "Opener", "text": "x"}}])
    people = {name: address(name) for name in ("clicker", "opener", "apple", "nobody")}
    for email in people.values():
        join(app, list_id, email)
    tick(app)
    tick(app)  # the email, then the wait
    with app.app_context():
        steps = automations.steps(automation_id)
        assert steps[4].params["step_id"] == steps[3].id  # by default: the last email before the branch
        automations.edit_step(automation_id, steps[4].id, {"condition": "opened", "step_id": steps[0].id})
        link_id = db.session.scalar(select(AutomationLink.id).where(AutomationLink.step_id == steps[0].id))
    enrollment_of = {e.subscriber_id: e.id for e in enrollments(app, automation_id)}
    ids = {name: enrollment_of[_subscriber(app, email)] for name, email in people.items()}
    assert client.get(f"/ac/{signed(app, 'click', steps[0].id, ids['clicker'], link_id)}",
                      headers=BROWSER).status_code == 302
    assert client.get(f"/ao/{signed(app, 'open', steps[0].id, ids['opener'])}", headers=BROWSER).status_code == 200
    # Apple Mail Privacy Protection fetches every image: a machine open, not a reader.
    assert client.get(f"/ao/{signed(app, 'open', steps[0].id, ids['apple'])}",
                      headers={"User-Agent": "Mozilla/5.0"}).status_code == 200
    # The same hit again records nothing new.
    client.get(f"/ao/{signed(app, 'open', steps[0].id, ids['opener'])}", headers=BROWSER)
    assert sorted((r[1], r[2]) for r in engagement_rows(app)) == [("click", False), ("open", False), ("open", True)]
    pass_the_wait(app)
    for _ in range(4):
        tick(app)
    subjects = {name: [m.subject for m in automation_mail(app, email)] for name, email in people.items()}
    # clicked: thanks; then opened (a click counts as an open): the opener's email.
    assert subjects == {"clicker": ["Hello", "Thanks for reading", "Opener"], "opener": ["Hello", "Opener"],
                        "apple": ["Hello"], "nobody": ["Hello"]}
    with app.app_context():
        built = report.build(automation_id)
    assert built.steps[0].engagement == {"opened": 2, "clicked": 1}
    assert built.steps[2].outcomes == {"continued": 1, "skipped": 3}
    assert built.steps[4].outcomes == {"continued": 2, "exited": 2}


def _subscriber(app, email: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Subscriber.id).where(Subscriber.email == email))


def test_a_branch_right_after_its_email_finds_no_open_yet(app):
    """No wait between: it runs in the same beat as the send, before anyone could open; it counts
    what is recorded (nothing), so the subscriber takes the "not opened" way."""
    list_id = make_list(app)
    automation_id = tracked(app, list_id, [LINKED, branch("opened"), THANKS])
    email = address("quick")
    join(app, list_id, email)
    tick(app)
    tick(app)
    assert [m.subject for m in automation_mail(app, email)] == ["Hello"]
    [enrollment] = enrollments(app, automation_id)
    assert enrollment.state == EnrollmentState.EXITED


@pytest.mark.parametrize("steps, field", [
    ([branch("opened")], "steps.0.params.step_id"),  # no send step before it
    ([WAIT, branch("clicked", step_id=1)], "steps.1.params.step_id"),  # no such step
    ([branch("read")], "params.condition"),
    ([LINKED, branch("opened", on_false="maybe")], "params.on_false"),
    ([LINKED, branch("opened", step_id="1")], "params.step_id"),
])
def test_bad_branches_are_refused_with_their_field(app, steps, field):
    with app.app_context():
        with pytest.raises(ValidationError) as refused:
            automations.create("x", "api_event", "a", steps, tracking=True)
    assert refused.value.field == field


def test_a_branch_names_an_earlier_send_step_of_a_tracked_automation(app):
    list_id = make_list(app)
    with app.app_context():
        untracked = automations.create("u", "subscribed", str(list_id), [LINKED])
        with pytest.raises(ValidationError) as refused:
            automations.add_step(untracked.id, "branch", branch("opened")["params"])
        assert refused.value.field == "params.condition"

        automation = automations.create("t", "subscribed", str(list_id), [LINKED, WAIT, branch("opened"), THANKS],
                                        tracking=True)
        send, wait, asks, later = automations.steps(automation.id)
        assert asks.params["step_id"] == send.id  # the last send step before it, by default
        for target, why in ((wait.id, "is a wait step"), (later.id, "does not come before")):
            with pytest.raises(ValidationError) as refused:
                automations.edit_step(automation.id, asks.id, {"condition": "clicked", "step_id": target})
            assert refused.value.field == "params.step_id" and why in refused.value.message
        with pytest.raises(ValidationError) as refused:
            automations.update(automation.id, tracking=False)
        assert refused.value.field == "tracking"
        with pytest.raises(StateConflict):
            automations.delete_step(automation.id, send.id)
        later_branch = automations.add_step(automation.id, "branch", {"condition": "clicked"})
        assert later_branch.params["step_id"] == later.id


def test_the_api_takes_tracking_and_a_branch_on_opened_and_names_bad_fields(app, api):
    list_id = make_list(app)
    created = api.post("/api/v1/automations", json={
        "name": "Nudge", "trigger": "subscribed", "trigger_key": str(list_id), "tracking": True,
        "steps": [LINKED, WAIT, branch("opened")]})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["tracking"] is True and body["steps"][2]["params"]["step_id"] == body["steps"][0]["id"]
    wrong = api.patch(f"/api/v1/automations/{body['id']}/steps/{body['steps'][2]['id']}",
                      json={"params": {"condition": "opened", "step_id": body["steps"][1]["id"]}})
    assert wrong.status_code == 422 and wrong.get_json()["errors"][0]["field"] == "params.step_id"
    untracked = api.post("/api/v1/automations", json={"name": "x", "trigger": "subscribed", "trigger_key": str(list_id),
                                                      "steps": [LINKED, branch("clicked")]})
    assert untracked.status_code == 422 and untracked.get_json()["errors"][0]["field"] == "steps.1.params.condition"
    off = api.patch(f"/api/v1/automations/{body['id']}", json={"tracking": False})
    assert off.status_code == 422 and off.get_json()["errors"][0]["field"] == "tracking"
    report_steps = api.get(f"/api/v1/automations/{body['id']}/report").get_json()["steps"]
    assert report_steps[0]["engagement"] == {}
    schema = api.get("/api/v1/openapi.json").get_json()
    assert "tracking" in schema["components"]["schemas"]["AutomationIn"]["properties"]
