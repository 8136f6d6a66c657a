"""The send-log pages: filters, keyset pager, delivery detail, CSV download, retry button and roles."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from sqlalchemy import insert, select

from newsletter.extensions import db
from newsletter.models import CampaignStatus, Delivery, DeliveryStatus, Role, Subscriber, SubscriberStatus
from newsletter.models.delivery_attempt import DeliveryAttempt
from newsletter.services.accounts import users
from newsletter.services.audience import lists
from newsletter.services.campaigns import campaigns, status
from tests.support.web import csrf_token, login

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sent_campaign(app):
    """A sent campaign of 60: 52 sent, 4 permanent (550), 3 transient (451), 1 cancelled."""
    with app.app_context():
        news = lists.create("News", "single")
        db.session.execute(insert(Subscriber), [
            {"email": f"p{i:02d}@example.com", "name": f"Person {i}", "attributes": {},
             "status": SubscriberStatus.CONFIRMED, "created_at": T0, "updated_at": T0} for i in range(60)])
        people = db.session.execute(select(Subscriber.id, Subscriber.email).order_by(Subscriber.id)).all()
        campaign = campaigns.create(name="March letter", subject="Hi", from_email="n@example.com", html="<p>x</p>",
                                    list_ids=[news.id])
        outcome = ([("sent", 250, "2.0.0 Ok")] * 52 + [("failed", 550, "5.1.1 No such user")] * 4
                   + [("failed", 451, "4.3.0 Try again later")] * 3 + [("cancelled", None, "")])
        db.session.execute(insert(Delivery), [
            {"campaign_id": campaign.id, "subscriber_id": sid, "email": email, "status": DeliveryStatus(st),
             "smtp_code": code, "smtp_message": msg, "attempts": 1, "created_at": T0,
             "updated_at": T0 + timedelta(seconds=i), "worker": "w"}
            for i, ((sid, email), (st, code, msg)) in enumerate(zip(people, outcome, strict=True))])
        first = db.session.scalar(select(Delivery.id).where(Delivery.email == "p52@example.com"))
        db.session.execute(insert(DeliveryAttempt), [
            {"delivery_id": first, "attempt": 1, "status": "failed", "at": T0, "smtp_code": 550,
             "smtp_message": "5.1.1 No such user", "worker": "celery@box pid 42", "task_id": "task-abc-123"}])
        status.transition(campaign.id, CampaignStatus.SENDING)
        status.transition(campaign.id, CampaignStatus.SENT)
        return campaign.id, first


def test_page_filters_and_pages_with_older_and_newest_links(app, admin_client, sent_campaign):
    campaign_id, _ = sent_campaign
    page = admin_client.get("/admin/send-log/").get_data(as_text=True)
    assert "March letter" in page and "p59@example.com" in page and "Older →" in page and "← Newest" not in page
    assert "p09@example.com" not in page  # 50 a page, newest first
    older = page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = admin_client.get(older).get_data(as_text=True)
    assert "p09@example.com" in second and "p59@example.com" not in second and "← Newest" in second
    assert "Older →" not in second

    failed = admin_client.get(f"/admin/send-log/?campaign_id={campaign_id}&status=failed&code=5xx").get_data(
        as_text=True)
    assert failed.count("badge badge-failed") == 4 and "No such user" in failed and "Try again later" not in failed
    assert "Retry failed" in failed  # 3 transient (451) + 1 cancelled, not the 4 permanent ones:
    assert "4 deliveries of this campaign failed transiently or were cancelled" in failed

    bad = admin_client.get("/admin/send-log/?code=abc&since=tomorrow").get_data(as_text=True)
    assert "An SMTP code like 550" in bad or "YYYY-MM-DD" in bad

    empty = admin_client.get("/admin/send-log/?q=nobody-here").get_data(as_text=True)
    assert "No delivery matches these filters" in empty


def test_detail_shows_every_attempt_with_worker_and_task(admin_client, sent_campaign):
    _, delivery_id = sent_campaign
    page = admin_client.get(f"/admin/send-log/{delivery_id}").get_data(as_text=True)
    assert "p52@example.com" in page and "celery@box pid 42" in page and "task-abc-123" in page and "550" in page
    assert admin_client.get("/admin/send-log/999999").status_code == 404


def test_csv_download_is_the_filtered_view(admin_client, sent_campaign):
    campaign_id, _ = sent_campaign
    response = admin_client.get(f"/admin/send-log/export.csv?campaign_id={campaign_id}&status=failed")
    assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["email"] for r in table] == [f"p{i}@example.com" for i in range(58, 51, -1)]
    assert {r["status"] for r in table} == {"failed"}


def test_retry_failed_moves_rows_and_queues_the_dispatcher_after_the_commit(app, admin_client, sent_campaign):
    campaign_id, _ = sent_campaign
    url = f"/admin/send-log/?campaign_id={campaign_id}"
    token = csrf_token(admin_client.get(url).get_data(as_text=True))
    celery = app.extensions["celery"]
    with mock.patch.object(celery, "send_task") as send_task:
        response = admin_client.post(f"/admin/send-log/campaigns/{campaign_id}/retry-failed",
                                     data={"csrf_token": token, "next": url})
    assert response.status_code == 302 and response.headers["Location"].endswith(url)
    send_task.assert_called_once_with("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
    with app.app_context():
        assert campaigns.get(campaign_id).status == CampaignStatus.SENDING
        statuses = [s.value for s in db.session.scalars(select(Delivery.status).where(
            Delivery.campaign_id == campaign_id))]
        assert (statuses.count("pending"), statuses.count("failed"), statuses.count("sent")) == (4, 4, 52)
    assert "Sending 4 deliveries again." in admin_client.get(url).get_data(as_text=True)
    # Without a CSRF token: refused, nothing queued.
    with mock.patch.object(celery, "send_task") as send_task:
        assert admin_client.post(f"/admin/send-log/campaigns/{campaign_id}/retry-failed").status_code == 400
    send_task.assert_not_called()


def test_a_viewer_reads_the_log_but_cannot_retry(app, client, sent_campaign):
    campaign_id, delivery_id = sent_campaign
    with app.app_context():
        users.create_user("v@example.com", "long enough password", Role.VIEWER)
    assert login(client, "v@example.com", "long enough password").status_code == 302
    for url in ("/admin/send-log/", f"/admin/send-log/{delivery_id}", "/admin/send-log/export.csv"):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/admin/send-log/?campaign_id={campaign_id}").get_data(as_text=True)
    assert "Retry failed" not in page
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    assert client.post(f"/admin/send-log/campaigns/{campaign_id}/retry-failed",
                       data={"csrf_token": token}).status_code == 403
    with app.app_context():
        assert campaigns.get(campaign_id).status == CampaignStatus.SENT


def test_signed_out_visitors_go_to_the_login_page(client):
    assert client.get("/admin/send-log/").status_code == 302


@pytest.mark.parametrize("device", ["desktop", "phone"])
def test_log_and_detail_in_a_browser(browser, live_server, admin, sent_campaign, shots, device):
    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
    from tests.web.test_browser import VIEWPORTS, assert_fits

    campaign_id, delivery_id = sent_campaign
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server}/admin/send-log/?campaign_id={campaign_id}")
    assert page.locator("table tbody tr").count() == 50
    page.screenshot(path=shots / f"send_log_{device}.png", full_page=True)
    assert_fits(page)
    page.select_option("#status", "failed")
    page.click("form[role=search] button[type=submit]")
    assert page.locator("table tbody tr").count() == 7 and "status=failed" in page.url
    page.goto(f"{live_server}/admin/send-log/{delivery_id}")
    assert "task-abc-123" in page.content()
    page.screenshot(path=shots / f"send_log_detail_{device}.png", full_page=True)
    assert_fits(page)
    page.close()
