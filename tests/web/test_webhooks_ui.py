"""Admin webhook pages: create with form errors, detail with secret and log, replay, rotate, delete, roles."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Role, Webhook, WebhookDelivery, WebhookDeliveryStatus
from newsletter.services.accounts import users
from newsletter.services.webhooks import webhooks
from tests.support.net import wait_for
from tests.support.web import csrf_token, login, post_form


@pytest.fixture
def endpoint(app, admin):
    with app.app_context():
        hook = webhooks.create("https://hooks.example.com/in", "CRM sync", ["subscriber.created"])
        webhooks.write("subscriber.created", [hook.id], [{"email": "ana@example.com"}])
        db.session.commit()
        return hook.id


def only_delivery(app, webhook_id: int) -> WebhookDelivery:
    with app.app_context():
        return db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                                  .order_by(WebhookDelivery.id)).all()


def test_empty_index_says_what_to_do(admin_client):
    page = admin_client.get("/admin/webhooks/").get_data(as_text=True)
    assert "No webhooks yet" in page and "Add your first webhook" in page


def test_create_shows_errors_next_to_fields_then_saves(app, admin_client):
    response = post_form(admin_client, "/admin/webhooks/new", "/admin/webhooks/new",
                         {"url": "ftp://example.com/x", "events": ["delivery.sent"], "active": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="field-error"' in page and "http:// or https://" in page
    response = post_form(admin_client, "/admin/webhooks/new", "/admin/webhooks/new",
                         {"url": "https://example.com/hook", "active": "y"})
    assert "Choose at least one event" in response.get_data(as_text=True)

    response = post_form(admin_client, "/admin/webhooks/new", "/admin/webhooks/new",
                         {"url": "https://example.com/hook", "description": "Zapier",
                          "events": ["delivery.sent", "campaign.finished"], "active": "y"})
    assert response.status_code == 302
    with app.app_context():
        hook = db.session.scalar(select(Webhook))
        assert (hook.url, hook.events, hook.active) == ("https://example.com/hook",
                                                        ["delivery.sent", "campaign.finished"], True)
        secret = webhooks.secret_for(hook)
    detail = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert secret in detail and "Send test event" in detail and "Nothing sent yet" in detail
    assert "Zapier" in admin_client.get("/admin/webhooks/").get_data(as_text=True)


def test_edit_keeps_checked_events_and_saves(app, admin_client, endpoint):
    page = admin_client.get(f"/admin/webhooks/{endpoint}/edit").get_data(as_text=True)
    assert re.search(r'value="subscriber.created"\s+checked', page)
    post_form(admin_client, f"/admin/webhooks/{endpoint}/edit", f"/admin/webhooks/{endpoint}/edit",
              {"url": "http://crm.example.org:8080/in", "events": ["delivery.failed"]})
    with app.app_context():
        hook = db.session.get(Webhook, endpoint)
        assert (hook.url, hook.events, hook.active) == ("http://crm.example.org:8080/in", ["delivery.failed"], False)


def test_log_delivery_page_replay_and_test_event(app, admin_client, endpoint):
    [first] = only_delivery(app, endpoint)
    detail = admin_client.get(f"/admin/webhooks/{endpoint}").get_data(as_text=True)
    assert "subscriber.created" in detail and f"#{first.id}" in detail and "badge-pending" in detail
    page = admin_client.get(f"/admin/webhooks/{endpoint}/deliveries/{first.id}").get_data(as_text=True)
    assert "ana@example.com" in page and "Replay" in page

    url = f"/admin/webhooks/{endpoint}/deliveries/{first.id}"
    response = post_form(admin_client, url, url + "/replay")
    assert response.status_code == 302
    post_form(admin_client, f"/admin/webhooks/{endpoint}", f"/admin/webhooks/{endpoint}/test")
    rows = only_delivery(app, endpoint)
    assert [r.event for r in rows] == ["subscriber.created", "subscriber.created", "webhook.test"]
    assert rows[1].payload == first.payload
    assert admin_client.get(f"/admin/webhooks/{endpoint}/deliveries/999999").status_code == 404


def test_log_is_keyset_paginated_newest_first(app, admin_client, endpoint):
    with app.app_context():
        webhooks.write("subscriber.created", [endpoint], [{"n": i} for i in range(60)])
        db.session.commit()
        ids = db.session.scalars(select(WebhookDelivery.id).order_by(WebhookDelivery.id.desc())).all()
    first = admin_client.get(f"/admin/webhooks/{endpoint}").get_data(as_text=True)
    assert f"#{ids[0]}<" in first and f"#{ids[49]}<" in first and f"#{ids[50]}<" not in first
    second = admin_client.get(f"/admin/webhooks/{endpoint}?before={ids[49]}").get_data(as_text=True)
    assert f"#{ids[50]}<" in second and f"#{ids[60]}<" in second and f"#{ids[49]}<" not in second
    assert "Older" not in second


def test_rotate_changes_the_secret_and_delete_asks_first(app, admin_client, endpoint):
    with app.app_context():
        before = webhooks.secret_for(db.session.get(Webhook, endpoint))
    assert "Make a new secret" in admin_client.get(f"/admin/webhooks/{endpoint}/rotate").get_data(as_text=True)
    post_form(admin_client, f"/admin/webhooks/{endpoint}/rotate", f"/admin/webhooks/{endpoint}/rotate")
    with app.app_context():
        after = webhooks.secret_for(db.session.get(Webhook, endpoint))
    assert after != before and after in admin_client.get(f"/admin/webhooks/{endpoint}").get_data(as_text=True)

    assert "Delete the webhook" in admin_client.get(f"/admin/webhooks/{endpoint}/delete").get_data(as_text=True)
    response = post_form(admin_client, f"/admin/webhooks/{endpoint}/delete", f"/admin/webhooks/{endpoint}/delete")
    assert response.status_code == 302
    with app.app_context():
        assert db.session.scalar(select(Webhook)) is None and db.session.scalar(select(WebhookDelivery)) is None


def test_a_marketer_gets_403_everywhere(app, client, endpoint):
    with app.app_context():
        users.create_user("m@example.com", "long enough password", Role.MARKETER)
        delivery_id = db.session.scalar(select(WebhookDelivery.id))
    assert login(client, "m@example.com", "long enough password").status_code == 302
    base = f"/admin/webhooks/{endpoint}"
    for url in ("/admin/webhooks/", "/admin/webhooks/new", base, base + "/edit", base + "/delete", base + "/rotate",
                f"{base}/deliveries/{delivery_id}"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    for url in (base + "/test", f"{base}/deliveries/{delivery_id}/replay", base + "/delete", base + "/rotate"):
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url
    assert "/admin/webhooks/" not in client.get("/admin/").get_data(as_text=True)


@pytest.mark.parametrize("url, reason", [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://[::ffff:a9fe:a9fe]/", "stands for 169.254.169.254"),
    ("http://2852039166/", "169.254.169.254 is a link-local address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata.google.internal is a cloud metadata service"),
    ("http://10.0.0.1:6379", "10.0.0.1 is a private-network address"),
    ("http://127.0.0.2:8080/", "127.0.0.2 is a loopback address"),  # the tests allow only 127.0.0.1/32
    ("http://localhost:8080/", "localhost is this machine"),
    ("http://admin:hunter2@hooks.example.com/", "Leave user names and passwords out"),
])
def test_internal_receivers_are_refused_next_to_the_url_field(app, admin_client, url, reason):
    response = post_form(admin_client, "/admin/webhooks/new", "/admin/webhooks/new",
                         {"url": url, "events": ["delivery.sent"], "active": "y"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'class="field-error"' in page and reason in page
    with app.app_context():
        assert db.session.scalar(select(Webhook)) is None


def test_the_delivery_page_shows_an_escaped_excerpt_of_the_reply(app, admin_client, endpoint):
    [row] = only_delivery(app, endpoint)

    def stored_long_reply() -> bool:
        # A row stored before replies were cut: the page cuts it too. Marked failed in the same
        # statement, and never while a worker holds it, so no attempt overwrites the reply after.
        with app.app_context():
            done = db.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == row.id, WebhookDelivery.status != WebhookDeliveryStatus.SENDING)
                .values(status=WebhookDeliveryStatus.FAILED,
                        response_body="<img src=x onerror=alert(1)>" + "y" * 900)).rowcount == 1
            db.session.commit()
            return done

    wait_for(stored_long_reply, 30, 0.2, "the delivery row out of a worker's hands")
    page = admin_client.get(f"/admin/webhooks/{endpoint}/deliveries/{row.id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert "y" * (200 - len("<img src=x onerror=alert(1)>")) + "</code>" in page and "y" * 200 not in page
