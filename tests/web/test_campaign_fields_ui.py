"""Missing data visible before sending, and the test-send follow-up (real database, Flask test client).

The sample subscriber carries the audience's attribute keys; the editor, the campaign page and
the send page warn how many recipients lack an attribute a template reads without a default;
the send page shows a real recipient's subject; errors name the missing field in plain words.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Notification, NotificationKind, NotificationStatus, Role
from newsletter.services.accounts import api_keys
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns
from tests.support.web import csrf_token, post_form

HTML = "<p>Hi {{ subscriber.name }} from {{ subscriber.attributes.city }}</p>"


@pytest.fixture(autouse=True)
def _purge_queues(app):
    yield
    app.extensions["celery"].control.purge()  # the test sends queued here are never sent by a later run


def _audience(app) -> int:
    """Four confirmed members (one with a city, one with a plan), one unconfirmed with a city."""
    with app.app_context():
        list_id = lists.create("Weekly").id
        subscribers.create("ana@example.org", "Ana", {"city": "Lyon", "plan": "pro"}, list_ids=[list_id])
        subscribers.create("bob@example.org", "Bob", {"plan": "free"}, list_ids=[list_id])
        subscribers.create("cy@example.org", "Cy", {"city": ""}, list_ids=[list_id])  # empty counts as missing
        subscribers.create("di@example.org", "Di", list_ids=[list_id])
        subscribers.create("un@example.org", "Un", {"city": "Oslo"}, list_ids=[list_id], status="unconfirmed")
        return list_id


def _campaign(app, list_id: int, **overrides) -> int:
    values = {"name": "June", "subject": "Hello {{ subscriber.name }}", "from_email": "news@example.org",
              "html": HTML, "list_ids": [list_id], **overrides}
    with app.app_context():
        return campaigns.create(**values).id


def _preview(client, **fields):
    token = csrf_token(client.get("/admin/campaigns/new").get_data(as_text=True))
    data = {"name": "N", "subject": "S", "from_email": "news@example.org", "html": "", "text": "", "layout_id": "",
            **fields}
    return client.post("/admin/campaigns/preview", data=data, headers={"X-CSRFToken": token})


def test_the_sample_subscriber_carries_the_audiences_attribute_keys(app, admin_client):
    list_id = _audience(app)
    response = _preview(admin_client, html='{{ subscriber.attributes.city | default("friend") }}'
                                           ' / {{ subscriber.attributes.plan | default("none") }}',
                        list_ids=[str(list_id)])
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["html"] == "Lyon / pro"  # real keys, with a value one of them has
    without_lists = _preview(admin_client, html='{{ subscriber.attributes.city | default("friend") }}')
    assert without_lists.get_json()["html"] == "friend"


def test_the_preview_lists_unguarded_attributes_and_unknown_names(app, admin_client):
    data = _preview(admin_client, html=HTML + '{{ subscriber.attributes.plan | default("free") }}{{ subscriber.nmae }}',
                    subject="Hi {{ frist_name }}").get_json()
    assert data["fields"]["unknown"] == ["frist_name", "subscriber.nmae"]
    assert [(a["key"], a["suggestion"]) for a in data["fields"]["attributes"]] == [
        ("city", '{{ subscriber.attributes.city | default("friend") }}')]


def test_missing_counts_are_of_confirmed_recipients(app, admin_client):
    list_id = _audience(app)
    data = admin_client.get(f"/admin/campaigns/fields.json?list_ids={list_id}&keys=city&keys=plan&keys=zip").get_json()
    assert data == {"recipients": 4, "missing": {"city": 3, "plan": 2, "zip": 4}}
    assert admin_client.get("/admin/campaigns/fields.json?list_ids=x&keys=city").get_json() == \
        {"recipients": 0, "missing": {}}
    odd = admin_client.get(f'/admin/campaigns/fields.json?list_ids={list_id}&keys=a"b').get_json()
    assert odd == {"recipients": 0, "missing": {}}  # a key no JSON path can hold is not counted, not a 500


def test_the_campaign_and_send_pages_warn_before_sending(app, admin_client):
    list_id = _audience(app)
    campaign_id = _campaign(app, list_id)
    # The campaign page names the attribute at once and has its script count who lacks it.
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Some recipients may have</span>\n      no <code>attributes.city</code>" in page
    assert "{{ subscriber.attributes.city | default(&#34;friend&#34;) }}" in page
    counts_url = page.split('data-counts-url="')[1].split('"')[0].replace("&amp;", "&")
    assert admin_client.get(counts_url).get_json() == {"recipients": 4, "missing": {"city": 3}}
    # The send confirmation counts before anyone presses Send.
    send = admin_client.get(f"/admin/campaigns/{campaign_id}/send").get_data(as_text=True)
    assert "<strong>3</strong> of 4 recipients have</span>\n      no <code>attributes.city</code>" in send


def test_guarded_attributes_are_not_warned_about(app, admin_client):
    list_id = _audience(app)
    campaign_id = _campaign(app, list_id, html='<p>{{ subscriber.attributes.city | default("friend") }}</p>')
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Check the personal fields" not in page


def test_the_send_confirmation_shows_a_real_recipients_subject(app, admin_client):
    list_id = _audience(app)
    campaign_id = _campaign(app, list_id, subject="{{ subscriber.name }}, news from {{ campaign.name }}")
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/send").get_data(as_text=True)
    example = page.split('class="example-subject"')[1].split("</p>")[0]
    assert "ana@example.org" in example and "<strong data-example-subject>Ana, news from June</strong>" in example
    assert "{{ subscriber.name }}" not in example


@pytest.mark.parametrize("html, message", [
    ("{{ subscriber.nonexistent.first }}", "there is no field `nonexistent`; available: id, email, name"),
    ("{{ subscriber.attributes.points + 1 }}", "there is no field `attributes.points` for this subscriber"),
])
def test_template_errors_name_the_field_in_form_preview_and_api(app, admin_client, html, message):
    form = post_form(admin_client, "/admin/campaigns/new", "/admin/campaigns/new",
                     {"name": "N", "subject": "S", "from_email": "news@example.org", "html": html, "layout_id": ""})
    page = form.get_data(as_text=True)
    assert form.status_code == 200 and message in page and "dict object" not in page
    preview = _preview(admin_client, html=html)
    assert preview.status_code == 422 and message in preview.get_json()["error"]["message"]
    with app.app_context():
        _, key = api_keys.create_api_key("fields", Role.MARKETER)
    response = app.test_client().post("/api/v1/campaigns", headers={"Authorization": f"Bearer {key}"},
                           json={"name": "N", "subject": "S", "from_email": "news@example.org", "html": html,
                                 "list_ids": []})
    errors = response.get_json()["errors"]
    assert response.status_code == 422 and errors[0]["field"] == "html" and message in errors[0]["message"]


def test_a_test_send_is_followed_until_the_server_answers(app, admin_client):
    list_id = _audience(app)
    campaign_id, other_id = _campaign(app, list_id), _campaign(app, list_id, name="Other")
    detail = f"/admin/campaigns/{campaign_id}"
    sent = post_form(admin_client, detail, f"{detail}/test", {"addresses": "me@example.org"})
    assert sent.status_code == 302
    with app.app_context():
        test_id = db.session.scalar(select(Notification.id).where(Notification.kind == NotificationKind.CAMPAIGN_TEST))
    assert sent.location.endswith(f"{detail}?tests={test_id}#test-send")
    page = admin_client.get(sent.location).get_data(as_text=True)
    assert f'data-test="{test_id}"' in page and f'href="/admin/send-log/mail/{test_id}"' in page
    # A transactional worker left running by an earlier test may already have sent it.
    status = admin_client.get(f"{detail}/tests.json?tests={test_id}").get_json()["tests"]
    assert [t["id"] for t in status] == [test_id]
    assert status[0]["status"] in ("queued", "sending", "committing", "sent")
    assert status[0]["done"] is (status[0]["status"] == "sent")
    with app.app_context():  # what the transactional worker writes when the server refuses it
        db.session.execute(update(Notification).where(Notification.id == test_id).values(
            status=NotificationStatus.FAILED, smtp_code=550, smtp_message="5.1.1 No such user"))
        db.session.commit()
    status = admin_client.get(f"{detail}/tests.json?tests={test_id}").get_json()["tests"]
    assert [(t["status"], t["smtp_code"], t["smtp_message"], t["done"], t["url"]) for t in status] == [
        ("failed", 550, "5.1.1 No such user", True, f"/admin/send-log/mail/{test_id}")]
    # Another campaign's page does not show this campaign's test emails; junk ids are ignored.
    assert admin_client.get(f"/admin/campaigns/{other_id}/tests.json?tests={test_id}").get_json() == {"tests": []}
    assert admin_client.get(f"{detail}/tests.json?tests=x,,99999999999").get_json() == {"tests": []}
    assert admin_client.get("/admin/campaigns/999999/tests.json?tests=1").status_code == 404
