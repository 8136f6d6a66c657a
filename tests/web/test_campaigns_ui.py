"""The campaign and layout pages: forms, live preview JSON, status changes, roles (real database)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from celery.signals import after_task_publish
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Layout, Notification, NotificationKind, Role
from newsletter.services.accounts import users
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns
from tests.support.web import csrf_token, login, post_form

NEW = "/admin/campaigns/new"


def _list_with_members(app, name="Weekly", confirmed=2, unconfirmed=1) -> int:
    with app.app_context():
        mailing_list = lists.create(name)
        for i in range(confirmed):
            subscribers.create(f"{name.lower()}-c{i}@example.org", f"Member {i}", list_ids=[mailing_list.id])
        for i in range(unconfirmed):
            subscribers.create(f"{name.lower()}-u{i}@example.org", list_ids=[mailing_list.id], status="unconfirmed")
        return mailing_list.id


def _form(list_ids=(), **overrides) -> dict:
    data = {"name": "June news", "subject": "Hello {{ subscriber.name }}", "from_name": "Acme",
            "from_email": "news@example.org", "reply_to": "", "layout_id": "",
            "html": "<p>Hi {{ subscriber.name }}</p>", "text": "", "list_ids": [str(i) for i in list_ids]}
    return {**data, **overrides}


def _campaign(app, list_ids=(), **overrides) -> int:
    with app.app_context():
        values = {key: value for key, value in _form(list_ids, **overrides).items()}
        values["list_ids"] = list(list_ids)
        return campaigns.create(**values).id


def _status(app, campaign_id) -> CampaignStatus:
    with app.app_context():
        return campaigns.get(campaign_id).status


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture(autouse=True)
def _hold_sends(send_rate):
    """These tests check pages and status moves, not sending. The session's beat sweeper acts
    on any campaign left `sending`; at this rate the limiter hands its rows back unsent, so
    no campaign finishes behind a test's back."""
    send_rate(0.01)


@pytest.fixture(autouse=True)
def queued(app):
    """The tasks this test published, as (name, args). Afterwards the queues are purged (on Redis
    or RabbitMQ alike), so no worker of a later run executes them against another database."""
    published: list[tuple[str, list]] = []

    def record(sender=None, body=None, **_):
        published.append((sender, list(body[0])))

    after_task_publish.connect(record, weak=False)
    try:
        yield lambda: list(published)
    finally:
        after_task_publish.disconnect(record)
        app.extensions["celery"].control.purge()


def _token(client, url="/admin/campaigns/") -> str:
    return csrf_token(client.get(url).get_data(as_text=True))


# Compose ------------------------------------------------------------------------------------

def test_create_campaign_through_the_form(app, admin_client):
    list_id = _list_with_members(app)
    page = admin_client.get(NEW).get_data(as_text=True)
    assert "Weekly · 2 confirmed" in page and 'sandbox=""' in page and "allow-scripts" not in page
    response = post_form(admin_client, NEW, NEW, _form([list_id]))
    assert response.status_code == 302
    with app.app_context():
        campaign = db.session.scalars(select(Campaign)).one()
        assert (campaign.name, campaign.status, [ml.id for ml in campaign.lists]) == \
            ("June news", CampaignStatus.DRAFT, [list_id])
        assert response.location.endswith(f"/admin/campaigns/{campaign.id}")
    detail = admin_client.get(response.location).get_data(as_text=True)
    assert "June news" in detail and "Hi Sam Sample" in detail  # the saved version, previewed


@pytest.mark.parametrize("changes, message", [
    ({"subject": ""}, "This field is required."),
    ({"from_email": "not an address"}, "email address"),
    ({"html": "<p>ok</p>\n{% if %}\n"}, "(line 2)"),
    ({"html": "{{ ''.__class__.__mro__ }}"}, "is not allowed: templates cannot reach Python internals"),
    ({"subject": "Hello\r\nBcc: victim@example.org"}, "Line breaks are not allowed here"),
])
def test_form_errors_show_next_to_the_field_and_save_nothing(app, admin_client, changes, message):
    response = post_form(admin_client, NEW, NEW, _form(**changes))
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    field = next(iter(changes))
    assert f'id="{field}-error"' in page, page
    assert message in page.split(f'id="{field}-error"', 1)[1].split("</small>", 1)[0]
    assert _count(app, Campaign) == 0


def test_edit_saves_and_refuses_a_campaign_that_is_sending(app, admin_client):
    list_id = _list_with_members(app)
    campaign_id = _campaign(app, [list_id])
    url = f"/admin/campaigns/{campaign_id}/edit"
    assert "June news" in admin_client.get(url).get_data(as_text=True)
    assert post_form(admin_client, url, url, _form([list_id], name="July news")).status_code == 302
    with app.app_context():
        assert campaigns.get(campaign_id).name == "July news"
        campaigns.send_now(campaign_id)
    response = admin_client.get(url)
    assert response.status_code == 302 and response.location.endswith(f"/admin/campaigns/{campaign_id}")
    assert "cannot be edited" in admin_client.get(response.location).get_data(as_text=True)


# Live preview and estimate ------------------------------------------------------------------

def test_preview_renders_for_the_chosen_subscriber(app, admin_client):
    list_id = _list_with_members(app)
    with app.app_context():
        subscribers.create("ana@example.org", "Ana", list_ids=[list_id])
    token = _token(admin_client, NEW)
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    data = _form([list_id], html="<p>Hi {{ subscriber.name }} <a href=\"{{ unsubscribe_url }}\">bye</a></p>")

    response = admin_client.post("/admin/campaigns/preview", data={**data, "preview_as": "ANA@example.org"},
                                 headers=headers)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["subject"] == "Hello Ana" and "Hi Ana" in body["html"] and "Hi Ana" in body["text"]
    assert "/unsubscribe/preview" in body["html"]  # an inert link: a preview never signs a real one

    sample = admin_client.post("/admin/campaigns/preview", data=data, headers=headers).get_json()
    assert "Hi Sam Sample" in sample["html"]

    unknown = admin_client.post("/admin/campaigns/preview", data={**data, "preview_as": "nobody@example.org"},
                                headers=headers)
    assert unknown.status_code == 422 and unknown.get_json()["error"]["field"] == "preview_as"


def test_preview_names_the_broken_field_and_needs_the_csrf_token(app, admin_client):
    token = _token(admin_client, NEW)
    broken = admin_client.post("/admin/campaigns/preview", data=_form(html="<p>\n{{ subscriber.name }\n"),
                               headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert broken.status_code == 422
    error = broken.get_json()["error"]
    assert error["field"] == "html" and "line" in error["message"]
    refused = admin_client.post("/admin/campaigns/preview", data=_form(), headers={"Accept": "application/json"})
    assert refused.status_code == 400


def test_estimate_counts_confirmed_members_once(app, admin_client):
    weekly = _list_with_members(app, "Weekly", confirmed=2, unconfirmed=1)
    daily = _list_with_members(app, "Daily", confirmed=1, unconfirmed=0)
    with app.app_context():
        subscribers.create("both@example.org", list_ids=[weekly, daily])
    response = admin_client.get(f"/admin/campaigns/estimate.json?list_ids={weekly}&list_ids={daily}")
    assert response.get_json() == {"recipients": 4}
    assert admin_client.get("/admin/campaigns/estimate.json").get_json() == {"recipients": 0}
    assert admin_client.get("/admin/campaigns/estimate.json?list_ids=999999").status_code == 422
    found = admin_client.get("/admin/campaigns/subscribers.json?q=both").get_json()["subscribers"]
    assert [s["email"] for s in found] == ["both@example.org"]


# Roles and unknown ids ----------------------------------------------------------------------

def test_viewer_sees_pages_without_change_buttons_and_is_refused_changes(app, client, admin):
    list_id = _list_with_members(app)
    campaign_id = _campaign(app, [list_id])
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    page = client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "June news" in page and "Send now" not in page and "Clone" not in page
    assert "New campaign" not in client.get("/admin/campaigns/").get_data(as_text=True)
    token = _token(client)
    for url in (NEW, "/admin/campaigns/preview", f"/admin/campaigns/{campaign_id}/send",
                f"/admin/campaigns/{campaign_id}/clone", f"/admin/campaigns/{campaign_id}/delete",
                f"/admin/campaigns/{campaign_id}/test", f"/admin/campaigns/{campaign_id}/schedule",
                "/admin/layouts/new", "/admin/layouts/preview"):
        assert client.post(url, data={**_form([list_id]), "csrf_token": token}).status_code == 403, url
    assert _status(app, campaign_id) == CampaignStatus.DRAFT and _count(app, Campaign) == 1


def test_unknown_ids_answer_404(admin_client):
    for url in ("/admin/campaigns/999999", "/admin/campaigns/999999/progress.json",
                "/admin/campaigns/999999/edit", "/admin/campaigns/999999/send", "/admin/layouts/999999"):
        assert admin_client.get(url).status_code == 404, url


# Status changes -----------------------------------------------------------------------------

def test_send_now_confirms_with_the_estimate_then_starts_sending(app, admin_client, queued):
    list_id = _list_with_members(app, confirmed=3)
    campaign_id = _campaign(app, [list_id])
    url = f"/admin/campaigns/{campaign_id}/send"
    page = admin_client.get(url).get_data(as_text=True)
    assert "<strong data-estimate-value>3</strong> recipients" in page and "Weekly" in page
    response = post_form(admin_client, url, url)
    assert response.status_code == 302 and response.location.endswith(f"/admin/campaigns/{campaign_id}")
    # Sending, or already sent when a test worker picked the dispatcher up that fast.
    assert _status(app, campaign_id) in (CampaignStatus.SENDING, CampaignStatus.SENT)
    assert queued() == [("newsletter.tasks.campaigns.dispatch_campaign", [campaign_id])]
    assert "is sending" in admin_client.get(response.location).get_data(as_text=True)


def test_send_now_without_lists_is_refused_with_a_message(app, admin_client, queued):
    campaign_id = _campaign(app)
    url = f"/admin/campaigns/{campaign_id}/send"
    assert "no lists to send to" in admin_client.get(url).get_data(as_text=True)
    response = post_form(admin_client, url, url)
    assert "Choose at least one list" in admin_client.get(response.location).get_data(as_text=True)
    assert _status(app, campaign_id) == CampaignStatus.DRAFT and queued() == []


def test_progress_pause_and_cancel_through_the_ui(app, admin_client, queued):
    campaign_id = _campaign(app, [_list_with_members(app)])
    detail = f"/admin/campaigns/{campaign_id}"
    with app.app_context():
        campaigns.send_now(campaign_id)  # no dispatcher queued: nothing moves it on behind the test
    page = admin_client.get(detail).get_data(as_text=True)
    assert "data-progress-url" in page and "<progress" in page and ">Pause</button>" in page
    progress = admin_client.get(f"{detail}/progress.json").get_json()
    assert progress["status"] == "sending" and {"sent", "failed", "pending", "rate", "eta_seconds"} <= set(progress)

    assert post_form(admin_client, detail, f"{detail}/pause").status_code == 302
    assert _status(app, campaign_id) == CampaignStatus.PAUSED
    assert "Resume sending" in admin_client.get(detail).get_data(as_text=True)
    assert "Cancel “June news”?" in admin_client.get(f"{detail}/cancel").get_data(as_text=True)
    post_form(admin_client, f"{detail}/cancel", f"{detail}/cancel")
    assert _status(app, campaign_id) == CampaignStatus.CANCELLED
    page = admin_client.get(detail).get_data(as_text=True)
    assert "Results" in page and "data-progress-url" not in page and "Pause" not in page
    # Refused moves come back as a message, not an error page.
    response = post_form(admin_client, detail, f"{detail}/resume")
    assert "cannot become sending" in admin_client.get(response.location).get_data(as_text=True)
    assert queued() == []


def test_resume_moves_on_and_queues_the_dispatcher(app, admin_client, queued):
    campaign_id = _campaign(app, [_list_with_members(app)])
    with app.app_context():
        campaigns.send_now(campaign_id)
        campaigns.pause(campaign_id)
    detail = f"/admin/campaigns/{campaign_id}"
    assert post_form(admin_client, detail, f"{detail}/resume").status_code == 302
    assert _status(app, campaign_id) in (CampaignStatus.SENDING, CampaignStatus.SENT)
    assert queued() == [("newsletter.tasks.campaigns.dispatch_campaign", [campaign_id])]


def test_schedule_in_a_timezone_stores_the_utc_instant(app, admin_client):
    campaign_id = _campaign(app, [_list_with_members(app)])
    detail = f"/admin/campaigns/{campaign_id}"
    response = post_form(admin_client, detail, f"{detail}/schedule",
                         {"send_at": "2031-01-15T09:30", "timezone": "Europe/Paris"})
    assert response.status_code == 302
    with app.app_context():
        campaign = campaigns.get(campaign_id)
        assert campaign.status == CampaignStatus.SCHEDULED
        stored = campaign.send_at  # SQLite gives it back naive (in UTC), PostgreSQL aware
        assert stored.replace(tzinfo=stored.tzinfo or UTC) == datetime(2031, 1, 15, 8, 30, tzinfo=UTC)
    assert "2031-01-15 08:30 UTC" in admin_client.get(detail).get_data(as_text=True)

    past = post_form(admin_client, detail, f"{detail}/schedule", {"send_at": "2001-01-01T00:00", "timezone": "UTC"})
    assert past.status_code == 400 and 'id="send_at-error"' in past.get_data(as_text=True)
    bad_zone = post_form(admin_client, detail, f"{detail}/schedule",
                         {"send_at": "2031-01-15T09:30", "timezone": "Mars/Olympus"})
    assert bad_zone.status_code == 400 and 'id="timezone-error"' in bad_zone.get_data(as_text=True)

    post_form(admin_client, detail, f"{detail}/unschedule")
    with app.app_context():
        campaign = campaigns.get(campaign_id)
        assert (campaign.status, campaign.send_at) == (CampaignStatus.DRAFT, None)


def test_test_send_checks_the_addresses(app, admin_client, queued):
    campaign_id = _campaign(app)
    detail = f"/admin/campaigns/{campaign_id}"
    bad = post_form(admin_client, detail, f"{detail}/test", {"addresses": "me@example.org, nope"})
    assert bad.status_code == 400 and "“nope”" in bad.get_data(as_text=True).split('id="addresses-error"')[1]
    many = ", ".join(f"t{i}@example.org" for i in range(11))
    assert "At most 10 addresses" in post_form(admin_client, detail, f"{detail}/test",
                                               {"addresses": many}).get_data(as_text=True)
    assert queued() == []
    unknown = post_form(admin_client, detail, f"{detail}/test",
                        {"addresses": "me@example.org", "preview_as": "nobody@example.org"})
    assert unknown.status_code == 400 and 'id="preview_as-error"' in unknown.get_data(as_text=True)
    with app.app_context():
        ana = subscribers.create("ana@example.org", "Ana").id
    ok = post_form(admin_client, detail, f"{detail}/test",
                   {"addresses": "Me@Example.org\nyou@example.org", "preview_as": "ana@example.org"})
    assert ok.status_code == 302
    # The test sends are queued as notifications (kind campaign_test), then their sends enqueued.
    with app.app_context():
        tests = db.session.execute(select(Notification.id, Notification.email, Notification.subscriber_id,
                                          Notification.data).where(Notification.kind == NotificationKind.CAMPAIGN_TEST)
                                   .order_by(Notification.id)).all()
    assert [(t.email, t.subscriber_id, t.data["campaign_id"]) for t in tests] == [
        ("me@example.org", ana, campaign_id), ("you@example.org", ana, campaign_id)]
    assert queued() == [("newsletter.tasks.notifications.send_notification", [t.id]) for t in tests]
    assert "queued for me@example.org, you@example.org" in admin_client.get(ok.location).get_data(as_text=True)


def test_clone_makes_an_editable_draft_copy(app, admin_client):
    list_id = _list_with_members(app)
    campaign_id = _campaign(app, [list_id])
    with app.app_context():
        campaigns.send_now(campaign_id)
        campaigns.cancel(campaign_id)
    detail = f"/admin/campaigns/{campaign_id}"
    response = post_form(admin_client, detail, f"{detail}/clone")
    assert response.status_code == 302 and response.location.endswith("/edit")
    with app.app_context():
        copy = db.session.scalars(select(Campaign).where(Campaign.id != campaign_id)).one()
        assert (copy.name, copy.status, [ml.id for ml in copy.lists]) == ("Copy of June news", CampaignStatus.DRAFT,
                                                                         [list_id])
    assert admin_client.get(response.location).status_code == 200


def test_delete_asks_first(app, admin_client):
    campaign_id = _campaign(app)
    url = f"/admin/campaigns/{campaign_id}/delete"
    assert "Delete “June news”?" in admin_client.get(url).get_data(as_text=True)
    assert post_form(admin_client, url, url).location.endswith("/admin/campaigns/")
    assert _count(app, Campaign) == 0


def test_index_filters_by_status_and_has_an_empty_state(app, admin_client):
    assert "No campaigns yet" in admin_client.get("/admin/campaigns/").get_data(as_text=True)
    list_id = _list_with_members(app)
    draft = _campaign(app, [list_id], name="Draft one")
    sending = _campaign(app, [list_id], name="Going out")
    with app.app_context():
        campaigns.send_now(sending)
    everything = admin_client.get("/admin/campaigns/").get_data(as_text=True)
    assert "Draft one" in everything and "Going out" in everything
    only_sending = admin_client.get("/admin/campaigns/?status=sending").get_data(as_text=True)
    assert "Going out" in only_sending and "Draft one" not in only_sending
    assert "No sent campaigns" in admin_client.get("/admin/campaigns/?status=sent").get_data(as_text=True)
    assert admin_client.get("/admin/campaigns/?status=bogus").status_code == 200
    assert draft


# Layouts ------------------------------------------------------------------------------------

LAYOUT = "<html><body><div class=\"box\">{{ content }}</div><p>To {{ subscriber.email }}</p></body></html>"


def test_layouts_crud_preview_and_use_in_a_campaign(app, admin_client):
    assert "No layouts yet" in admin_client.get("/admin/layouts/").get_data(as_text=True)
    missing = post_form(admin_client, "/admin/layouts/new", "/admin/layouts/new", {"name": "Plain", "html": "<p>x</p>"})
    assert "{{ content }}" in missing.get_data(as_text=True).split('id="html-error"')[1]
    assert _count(app, Layout) == 0
    broken = post_form(admin_client, "/admin/layouts/new", "/admin/layouts/new",
                       {"name": "Plain", "html": "{{ content }}\n{% for %}"})
    assert "(line 2)" in broken.get_data(as_text=True) and _count(app, Layout) == 0

    created = post_form(admin_client, "/admin/layouts/new", "/admin/layouts/new", {"name": "Brand", "html": LAYOUT})
    assert created.status_code == 302
    with app.app_context():
        layout_id = db.session.scalars(select(Layout.id)).one()
    page = admin_client.get(f"/admin/layouts/{layout_id}").get_data(as_text=True)
    assert "Brand" in page and "Your campaign goes here." in page

    token = _token(admin_client, "/admin/layouts/new")
    preview = admin_client.post("/admin/layouts/preview", data={"html": LAYOUT},
                                headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert "<div class=\"box\"><p>Your campaign goes here.</p></div>" in preview.get_json()["html"]
    assert "subscriber@example.com" in preview.get_json()["html"]
    refused = admin_client.post("/admin/layouts/preview", data={"html": "<p>no content</p>"},
                                headers={"X-CSRFToken": token})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "html"

    edit = f"/admin/layouts/{layout_id}/edit"
    assert post_form(admin_client, edit, edit, {"name": "Brand 2", "html": LAYOUT}).status_code == 302

    campaign_id = _campaign(app, layout_id=str(layout_id))
    body = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Brand 2" in body and "&lt;div class=&#34;box&#34;&gt;&lt;p&gt;Hi Sam Sample" in body  # inside srcdoc

    delete = f"/admin/layouts/{layout_id}/delete"
    assert "1 campaign uses" in admin_client.get(delete).get_data(as_text=True)
    assert post_form(admin_client, delete, delete).status_code == 302
    assert _count(app, Layout) == 0
    with app.app_context():
        assert campaigns.get(campaign_id).layout_id is None

