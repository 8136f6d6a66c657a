"""The automation pages: create, add a step of each kind, start and pause, the report; form errors
next to their fields; viewers read but cannot change."""
from __future__ import annotations

import re

from newsletter.models import OptIn, Role
from newsletter.services.accounts import users
from newsletter.services.audience import lists
from newsletter.services.automations import automations
from tests.support.web import login, post_form


def make_list(app) -> int:
    with app.app_context():
        return lists.create("Welcome", OptIn.SINGLE).id


def test_empty_state_create_add_steps_start_and_pause(app, admin_client):
    page = admin_client.get("/admin/automations/").get_data(as_text=True)
    assert "No automations yet" in page and "Create your first automation" in page
    list_id = make_list(app)
    created = post_form(admin_client, "/admin/automations/new", "/admin/automations/new",
                        {"name": "Welcome series", "trigger": "subscribed", "trigger_key": str(list_id)})
    assert created.status_code == 302
    detail_url = created.headers["Location"]
    automation_id = int(re.search(r"/(\d+)$", detail_url).group(1))
    assert "No steps yet" in admin_client.get(detail_url).get_data(as_text=True)

    steps = [("send", {"subject": "Hi {{ subscriber.name }}", "html": "<p>Welcome</p>", "text": ""}),
             ("wait", {"minutes": "1440", "at": "09:00", "timezone": "Europe/Lisbon"}),
             ("branch", {"rules": '{"match": "all", "rules": []}', "on_false": "skip"})]
    for kind, data in steps:
        url = f"/admin/automations/{automation_id}/steps/new/{kind}"
        response = post_form(admin_client, url, url, data)
        assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        saved = automations.steps(automation_id)
        assert [s.kind.value for s in saved] == ["send", "wait", "branch"]
        assert saved[1].params == {"minutes": 1440, "at": "09:00", "timezone": "Europe/Lisbon"}

    # The page's own Start form (its fields as rendered, not only ours).
    form = re.search(r'<form method="post"[^>]*action="(/admin/automations/\d+/status)">(.*?)</form>',
                     admin_client.get(detail_url).get_data(as_text=True), re.S)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
    assert [name for name in re.findall(r'name="([^"]+)"', form.group(2))].count("status") == 1
    started = admin_client.post(form.group(1), data=fields)
    assert started.status_code == 302
    html = admin_client.get(detail_url).get_data(as_text=True)
    assert "badge-sent\">active" in html and ">Pause</button>" in html and "Send an email" in html
    post_form(admin_client, detail_url, f"/admin/automations/{automation_id}/status", {"status": "paused"})
    with app.app_context():
        assert automations.get(automation_id).status.value == "paused"

    # Editing a step raises its version.
    step_url = f"/admin/automations/{automation_id}/steps/{saved[0].id}"
    assert "Hi {{ subscriber.name }}" in admin_client.get(step_url).get_data(as_text=True)
    assert post_form(admin_client, step_url, step_url, {"subject": "Hello", "html": "<p>x</p>"}).status_code == 302
    with app.app_context():
        assert automations.steps(automation_id)[0].version == 2


def test_bad_input_shows_next_to_its_field_and_saves_nothing(app, admin_client):
    bad = post_form(admin_client, "/admin/automations/new", "/admin/automations/new",
                    {"name": "X", "trigger": "subscribed", "trigger_key": "424242"})
    assert bad.status_code == 200 and "The id of an existing list." in bad.get_data(as_text=True)
    list_id = make_list(app)
    with app.app_context():
        automation_id = automations.create("A", "subscribed", str(list_id)).id
    url = f"/admin/automations/{automation_id}/steps/new/wait"
    wrong_time = post_form(admin_client, url, url, {"minutes": "5", "at": "9am", "timezone": "UTC"})
    assert wrong_time.status_code == 200 and "is not a time of day HH:MM" in wrong_time.get_data(as_text=True)
    url = f"/admin/automations/{automation_id}/steps/new/send"
    sandbox = post_form(admin_client, url, url, {"subject": "Hi", "html": "{{ ''.__class__ }}"})
    assert sandbox.status_code == 200 and 'id="html-error"' in sandbox.get_data(as_text=True)
    url = f"/admin/automations/{automation_id}/steps/new/branch"
    not_json = post_form(admin_client, url, url, {"rules": "{nope", "on_false": "exit"})
    assert not_json.status_code == 200 and "Not JSON" in not_json.get_data(as_text=True)
    assert admin_client.get(f"/admin/automations/{automation_id}/steps/new/teleport").status_code == 404
    with app.app_context():
        assert automations.steps(automation_id) == []


def test_a_viewer_reads_but_cannot_change(app, client):
    list_id = make_list(app)
    with app.app_context():
        automation_id = automations.create("A", "subscribed", str(list_id),
                                           [{"kind": "send", "params": {"subject": "S", "text": "T"}}]).id
        step_id = automations.steps(automation_id)[0].id
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    detail = client.get(f"/admin/automations/{automation_id}")
    assert detail.status_code == 200 and ">Start</button>" not in detail.get_data(as_text=True)
    assert client.get(f"/admin/automations/{automation_id}/steps/{step_id}").status_code == 200
    refused = post_form(client, f"/admin/automations/{automation_id}",
                        f"/admin/automations/{automation_id}/status", {"status": "active"})
    assert refused.status_code == 403
    with app.app_context():
        assert automations.get(automation_id).status.value == "paused"


def test_reentry_tracking_a_branch_on_opened_and_moving_steps(app, admin_client):
    list_id = make_list(app)
    created = post_form(admin_client, "/admin/automations/new", "/admin/automations/new",
                        {"name": "Nudge", "trigger": "subscribed", "trigger_key": str(list_id), "reentry": "y",
                         "reentry_gap_minutes": "90", "tracking": "y"})
    assert created.status_code == 302, created.get_data(as_text=True)
    automation_id = int(re.search(r"/(\d+)$", created.headers["Location"]).group(1))
    base = f"/admin/automations/{automation_id}"
    for kind, data in (("send", {"subject": "Hi", "html": '<a href="https://example.com/">x</a>'}),
                       ("wait", {"minutes": "60", "timezone": "UTC"})):
        assert post_form(admin_client, f"{base}/steps/new/{kind}", f"{base}/steps/new/{kind}", data).status_code == 302
    with app.app_context():
        automation = automations.get(automation_id)
        assert (automation.reentry, automation.reentry_gap_minutes, automation.tracking) == (True, 90, True)
        send, wait = automations.steps(automation_id)
    url = f"{base}/steps/new/branch"
    page = admin_client.get(url).get_data(as_text=True)
    assert f'<option value="{send.id}">Step 1: Hi</option>' in page and f'value="{wait.id}"' not in page
    wrong = post_form(admin_client, url, url, {"condition": "opened", "step_id": str(wait.id), "on_false": "exit"})
    assert wrong.status_code == 200 and 'id="step_id-error"' in wrong.get_data(as_text=True)
    garbage = post_form(admin_client, url, url, {"condition": "opened", "step_id": "abc", "on_false": "exit"})
    assert garbage.status_code == 200 and 'id="step_id-error"' in garbage.get_data(as_text=True)
    assert post_form(admin_client, url, url, {"condition": "clicked", "step_id": "", "on_false": "skip"}
                     ).status_code == 302
    with app.app_context():
        asks = automations.steps(automation_id)[2]
        assert asks.params == {"condition": "clicked", "step_id": send.id, "on_false": "skip"}

    # The page's move buttons: CSRF-protected POSTs (the wait goes up above the email).
    detail = admin_client.get(base).get_data(as_text=True)
    forms = re.findall(rf'<form method="post" class="inline" action="({base}/steps/(\d+)/move)">(.*?)</form>',
                       detail, re.S)
    up = next((action, body) for action, step_id, body in forms if int(step_id) == wait.id and '"up"' in body)
    fields = dict(re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', up[1]))
    assert admin_client.post(up[0], data={"direction": "up"}).status_code == 400  # no CSRF token
    moved = admin_client.post(up[0], data=fields)
    assert moved.status_code == 302
    with app.app_context():
        assert [s.id for s in automations.steps(automation_id)] == [wait.id, send.id, asks.id]
    # The branch cannot go above the email it asks about: a message, nothing moved.
    refused = admin_client.post(f"{base}/steps/{asks.id}/move", data={**fields, "direction": "up"},
                                follow_redirects=True)
    assert "asks about the email just above it" in refused.get_data(as_text=True)
    with app.app_context():
        assert [s.id for s in automations.steps(automation_id)] == [wait.id, send.id, asks.id]
