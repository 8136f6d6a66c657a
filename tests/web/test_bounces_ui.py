"""Send log → Bounces: the reports with their filters, the 30-day complaint rate and each recent
campaign's against the thresholds, and the campaign page's bounced/complained numbers."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import insert, select

from newsletter.extensions import db
from newsletter.models import BounceType, Campaign, CampaignStatus, Delivery, DeliveryStatus, Role, Subscriber
from newsletter.models.base import utcnow
from newsletter.services.accounts import users
from newsletter.services.deliverability import bounces
from newsletter.services.deliverability.bounces import BounceReport
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.pipeline.conftest import make_audience, make_campaign
from tests.support.web import login

from .test_browser import CHROMIUM, VIEWPORTS, assert_fits


@pytest.fixture
def reported(app):
    """A sent campaign of 400 with 2 hard bounces (one at gmail.com), 1 soft and 2 complaints (0.5 %)."""
    with app.app_context():
        list_id, emails = make_audience(400, prefix="rate")
        campaign_id = make_campaign([list_id], name="Autumn sale")
        now = utcnow()
        db.session.execute(insert(Delivery), [
            {"campaign_id": campaign_id, "subscriber_id": sid, "email": address, "status": DeliveryStatus.SENT,
             "created_at": now, "updated_at": now, "sent_at": now, "smtp_code": 250}
            for sid, address in db.session.execute(select(Subscriber.id, Subscriber.email))])
        db.session.execute(Campaign.__table__.update().where(Campaign.id == campaign_id).values(
            status=CampaignStatus.SENT, sent=400, recipients=400, started_at=now, finished_at=now))
        db.session.commit()
        ids = {address: did for address, did in db.session.execute(select(Delivery.email, Delivery.id))}
        db.session.execute(Subscriber.__table__.update().where(Subscriber.email == emails[0])
                           .values(email="gone@gmail.com"))
        db.session.execute(Delivery.__table__.update().where(Delivery.email == emails[0])
                           .values(email="gone@gmail.com"))
        db.session.commit()
        for address, kind, code in [(emails[0], BounceType.HARD, "5.1.1"), (emails[1], BounceType.HARD, "5.1.2"),
                                    (emails[2], BounceType.SOFT, "4.2.2"), (emails[3], BounceType.COMPLAINT, ""),
                                    (emails[4], BounceType.COMPLAINT, "")]:
            bounces.record(BounceReport(kind, "mailbox", delivery_id=ids[address], status_code=code,
                                        diagnostic=f"reply for {address}"))
        return campaign_id


def _rows(html: str) -> int:
    table = re.search(r'<table class="striped log-table" id="bounces">(.*?)</table>', html, re.S)
    return table.group(1).count("<tr>") - 1 if table else 0


def test_the_page_lists_filters_and_raises_the_complaint_alarm(admin_client, reported):
    page = admin_client.get("/admin/send-log/bounces/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert _rows(html) == 5
    assert "0.50 %" in html and "over 0.3 %" in html and "start refusing" in html
    assert "Autumn sale" in html and "gone@gmail.com" in html and "5.1.1" in html
    assert _rows(admin_client.get("/admin/send-log/bounces/?type=hard").get_data(as_text=True)) == 2
    assert _rows(admin_client.get("/admin/send-log/bounces/?type=complaint").get_data(as_text=True)) == 2
    only_gmail = admin_client.get("/admin/send-log/bounces/?domain=gmail.com").get_data(as_text=True)
    assert _rows(only_gmail) == 1 and "gone@gmail.com" in only_gmail
    assert _rows(admin_client.get(f"/admin/send-log/bounces/?campaign={reported}").get_data(as_text=True)) == 5
    assert "No bounce matches" in admin_client.get("/admin/send-log/bounces/?campaign=999").get_data(as_text=True)


def test_bad_filters_are_400s_with_the_field_named(admin_client, reported):
    for query, words in [("type=bogus", "Unknown type"), ("domain=a%20b", "A domain such as"),
                         ("campaign=abc", "campaign"), ("cursor=zz", "cursor")]:
        page = admin_client.get(f"/admin/send-log/bounces/?{query}")
        assert page.status_code == 400, query
        assert words.lower() in page.get_data(as_text=True).lower(), query


def test_the_campaign_page_shows_bounced_and_complaints_with_the_rate(admin_client, reported):
    html = admin_client.get(f"/admin/campaigns/{reported}").get_data(as_text=True)
    bounced = re.search(r'id="bounced">.*?>([\d,]+)<', html, re.S)
    complained = re.search(r'id="complained">.*?>([\d,]+)<', html, re.S)
    assert bounced.group(1) == "3" and complained.group(1) == "2"
    assert "0.50 %" in html and "over 0.3 %" in html


def test_a_viewer_reads_the_page(app, client, reported):
    with app.app_context():
        users.create_user("viewer@example.com", "long enough password", Role.VIEWER)
    login(client, "viewer@example.com", "long enough password")
    assert client.get("/admin/send-log/bounces/").status_code == 200


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_the_page_in_a_browser_fits_desktop_and_phone(browser, live_server, admin, reported, shots, device):
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/admin/send-log/bounces/")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/admin/send-log/bounces/")
    assert page.locator("#bounces tbody tr").count() == 5
    assert "over 0.3 %" in page.locator("#complaint-rate").inner_text()
    assert_fits(page)
    page.screenshot(path=shots / f"bounces_{device}.png", full_page=True)
    page.close()


def test_the_subscriber_page_lists_their_bounces(app, admin_client, reported):
    with app.app_context():
        subscriber_id = db.session.scalar(select(Subscriber.id).where(Subscriber.email == "gone@gmail.com"))
        clean_id = db.session.scalar(select(Subscriber.id).where(Subscriber.email == "rate00010@example.com"))
    html = admin_client.get(f"/admin/subscribers/{subscriber_id}").get_data(as_text=True)
    assert 'id="bounces"' in html and "5.1.1" in html and "reply for rate00000@example.com" in html
    assert 'id="bounces"' not in admin_client.get(f"/admin/subscribers/{clean_id}").get_data(as_text=True)
