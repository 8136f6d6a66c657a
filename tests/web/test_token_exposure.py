"""Subscriber links: previews and test emails carry inert ones, and revoking or erasing ends old ones.

Real database, real SMTP server, real worker for the campaign send; links are followed
through the public routes exactly as a mail client or a browser would.
"""
from __future__ import annotations

import email
import email.policy
import re
from urllib.parse import urlsplit

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, SubscriptionStatus
from newsletter.services.audience import tokens
from newsletter.services.campaigns import campaigns
from newsletter.services.campaigns import send as campaign_send
from newsletter.tasks import enqueue
from newsletter.tasks.notifications import send_notification
from tests.pipeline.conftest import wait_until_status
from tests.support.net import wait_for
from tests.support.web import csrf_token, post_form
from tests.web.test_public import ONE_CLICK, address, make_list, make_subscriber, state, with_token

LINKS_HTML = ('<p>Hi {{ subscriber.name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a> '
              '<a href="{{ preferences_url }}">Preferences</a> <a href="{{ web_view_url }}">Web</a></p>')


def hrefs(html: str) -> list[str]:
    return re.findall(r'href="([^"]+)"', html)


def campaign_for(app, list_id: int) -> int:
    with app.app_context():
        return campaigns.create(name="June", subject="Hi {{ subscriber.name }}", from_name="Acme",
                                from_email="news@example.org", html=LINKS_HTML, list_ids=[list_id]).id


def assert_links_are_inert(app, subscriber_id: int, urls: list[str]) -> None:
    """Every way of following each link leaves the subscriber exactly as they were."""
    before = state(app, subscriber_id)
    paths = {urlsplit(url).path for url in urls}
    assert {p.split("/")[1] for p in paths} == {"unsubscribe", "preferences", "view"}, paths
    pages = {}
    for path in paths:
        browser = app.test_client()
        page = pages[path] = browser.get(path)
        html = page.get_data(as_text=True)
        if path.startswith("/unsubscribe/"):
            app.test_client().post(path, data=ONE_CLICK)  # a mail client's RFC 8058 one-click
            browser.post(path, data={"action": "all"})
        if path.startswith("/preferences/") and 'name="csrf_token"' in html:  # a page with a form: submit it
            browser.post(path, data={"csrf_token": csrf_token(html), "name": "Changed"})  # no lists: leave all
    assert state(app, subscriber_id) == before
    assert before["lists"] and not before["suppressed"]
    for path, page in pages.items():
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "This is a preview link" in html, path
        assert "nothing was changed" in html

def test_preview_as_a_real_subscriber_shows_only_inert_links(app, admin_client):
    news = make_list(app, "News")
    subscriber_id = make_subscriber(app, (email_address := address("ana")), [news], name="Ana")
    page = admin_client.get("/admin/campaigns/new")
    response = admin_client.post(
        "/admin/campaigns/preview",
        data={"name": "June", "subject": "Hi {{ subscriber.name }}", "from_name": "Acme",
              "from_email": "news@example.org", "html": LINKS_HTML, "list_ids": [str(news)],
              "preview_as": email_address},
        headers={"X-CSRFToken": csrf_token(page.get_data(as_text=True)), "Accept": "application/json"})
    assert response.status_code == 200, response.get_json()
    html = response.get_json()["html"]
    assert "Hi Ana" in html  # the chosen subscriber's data, but none of their power
    assert_links_are_inert(app, subscriber_id, hrefs(html))


def test_a_test_email_as_a_real_subscriber_carries_only_inert_links(app, transactional_worker, smtp_server):
    news = make_list(app, "News")
    subscriber_id = make_subscriber(app, address("ana"), [news], name="Ana")
    campaign_id = campaign_for(app, news)
    with app.app_context():
        queued = campaign_send.queue_test(campaign_id, ["colleague@example.org"], subscriber_id)
        assert len(queued) == 1
        enqueue(send_notification, queued[0])
    wait_for(lambda: smtp_server.received.get("colleague@example.org"), 30, message="the test email")
    message = email.message_from_bytes(smtp_server.received["colleague@example.org"][0], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    assert "Hi Ana" in html
    one_click = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)
    assert_links_are_inert(app, subscriber_id, hrefs(html) + [one_click])


def test_revoking_links_ends_every_earlier_link_with_a_clear_page(app, admin_client):
    news = make_list(app, "News")
    subscriber_id = make_subscriber(app, address(), [news])
    old = {"unsubscribe": with_token(app, tokens.unsubscribe_token, subscriber_id, [news], 1),
           "preferences": with_token(app, tokens.preferences_token, subscriber_id),
           "view": with_token(app, tokens.view_token, campaign_for(app, news), subscriber_id),
           "manage": with_token(app, tokens.manage_token, subscriber_id)}
    assert app.test_client().get(f"/preferences/{old['preferences']}").status_code == 200

    detail = f"/admin/subscribers/{subscriber_id}"
    assert "Revoke email links" in admin_client.get(detail).get_data(as_text=True)
    response = post_form(admin_client, detail, f"{detail}/revoke-links")
    assert response.status_code == 302 and response.location.endswith(detail)
    assert "no longer works" in admin_client.get(detail).get_data(as_text=True)

    before = state(app, subscriber_id)
    for purpose, token in old.items():
        page = app.test_client().get(f"/{purpose}/{token}")
        assert page.status_code == 410 and "This link no longer works" in page.get_data(as_text=True), purpose
    assert app.test_client().post(f"/unsubscribe/{old['unsubscribe']}", data=ONE_CLICK).status_code == 410
    assert state(app, subscriber_id) == before
    fresh = with_token(app, tokens.preferences_token, subscriber_id)
    assert app.test_client().get(f"/preferences/{fresh}").status_code == 200
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "subscriber.links_revoked"))
        assert event is not None and event.target_id == str(subscriber_id)


def test_erasure_ends_every_earlier_link(app, client):
    news = make_list(app, "News")
    subscriber_id = make_subscriber(app, address(), [news])
    preferences = "/preferences/" + with_token(app, tokens.preferences_token, subscriber_id)
    unsubscribe = "/unsubscribe/" + with_token(app, tokens.unsubscribe_token, subscriber_id)

    page = client.get(preferences)
    erased = client.post(f"{preferences}/erase", data={"confirm": "y",
                                                       "csrf_token": csrf_token(page.get_data(as_text=True))},
                         follow_redirects=True)
    assert erased.status_code == 410 and "Your data was erased" in erased.get_data(as_text=True)

    after = state(app, subscriber_id)
    refused = app.test_client().post(unsubscribe, data=ONE_CLICK)
    assert refused.status_code == 410 and "You are unsubscribed" not in refused.get_data(as_text=True)
    assert state(app, subscriber_id) == after


def test_a_campaign_sent_after_revoking_carries_links_that_work(app, admin_client, worker, beat, smtp_server):
    news = make_list(app, "News")
    recipient = address("rv")
    subscriber_id = make_subscriber(app, recipient, [news], name="Rita")
    stale = with_token(app, tokens.unsubscribe_token, subscriber_id, [news])
    detail = f"/admin/subscribers/{subscriber_id}"
    assert post_form(admin_client, detail, f"{detail}/revoke-links").status_code == 302

    campaign_id = campaign_for(app, news)
    with app.app_context():
        campaigns.send_now(campaign_id)
        app.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
        wait_until_status(campaign_id, "sent")
    message = email.message_from_bytes(smtp_server.received[recipient][0], policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    preferences = next(url for url in hrefs(html) if "/preferences/" in url)
    assert app.test_client().get(urlsplit(preferences).path).status_code == 200

    assert app.test_client().post(f"/unsubscribe/{stale}", data=ONE_CLICK).status_code == 410
    assert state(app, subscriber_id)["lists"] == {news: SubscriptionStatus.CONFIRMED}
    one_click = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"]).group(1)
    done = app.test_client().post(urlsplit(one_click).path, data=ONE_CLICK)
    assert done.status_code == 200 and done.mimetype == "text/plain"
    assert state(app, subscriber_id)["lists"] == {news: SubscriptionStatus.UNSUBSCRIBED}
