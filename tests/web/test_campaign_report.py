"""The campaign report page: numbers, chart, failures, exclusions, links and the retry button by role."""
from __future__ import annotations

import re

import pytest

from newsletter.extensions import db
from newsletter.models import Campaign, Role
from newsletter.services.accounts import users
from tests.services.test_reports import seed_campaign
from tests.support.web import login, sign_in_page


def _viewer(app, client, role=Role.VIEWER):
    with app.app_context():
        users.create_user(f"{role.value}@example.com", "long enough password", role)
    login(client, f"{role.value}@example.com", "long enough password")


def test_report_shows_the_numbers_chart_failures_and_exclusions(app, admin_client):
    with app.app_context():
        campaign_id = seed_campaign()
    page = admin_client.get(f"/admin/campaigns/{campaign_id}/report").get_data(as_text=True)
    stats = dict((label, value) for value, label in re.findall(
        r'stat-value">([\d,]+)</span><span class="stat-label">([^<]+)<', page))
    assert stats == {"Recipients": "15", "Sent": "7", "Failed": "5", "Cancelled": "2", "Not sent yet": "1",
                     "Left out": "10"}
    # Per minute 10:00-10:04: sent 4,0,2,0,1 and failed 0,2,0,2,1: six bars, stacked.
    assert "Emails per minute" in page and len(re.findall(r'<rect class="bar ', page)) == 6
    assert "2024-05-01 10:00 UTC: 4 sent" in page and "2024-05-01 10:03 UTC: 2 failed" in page
    failures = re.findall(r"<li>\s*<span><strong>([^<]+)</strong> <small class=\"muted\">([^<]+)</small></span>\s*"
                          r"<strong class=\"num\">(\d+)</strong>\s*<code[^>]*>([^<]+)</code>", page)
    assert failures == [("550", "permanent", "3", "550 5.1.1 User unknown"),
                        ("421", "temporary", "1", "421 Try again later"),
                        ("No reply", "no answer", "1", "ConnectionRefusedError: [Errno 111]")]
    assert "4 min 30 s" in page and "1.6 emails/min" in page  # 7 in 270 s: per minute reads better than 0.0/s
    for label, count in (("Suppressed", 4), ("Unsubscribed", 3), ("Not confirmed", 2), ("Duplicates", 1)):
        assert re.search(rf'"exclusion-label">{label}</span><strong class="num">{count}</strong>', page), label
    assert f'href="/admin/send-log/?campaign_id={campaign_id}"' in page
    form = re.search(r'<form method="post" action="([^"]+)">(.*?)</form>', page.split("report-actions")[1], re.S)
    assert form.group(1) == f"/admin/send-log/campaigns/{campaign_id}/retry-failed"
    assert 'name="csrf_token"' in form.group(2) and "Retry failed" in form.group(2)
    assert f'name="next" value="/admin/campaigns/{campaign_id}/report"' in form.group(2)


def test_the_retry_button_posts_to_the_send_log_and_comes_back_to_the_report(app, admin_client):
    from unittest import mock

    from tests.support.web import post_form

    with app.app_context():
        campaign_id = seed_campaign()
    report_url = f"/admin/campaigns/{campaign_id}/report"
    # The form as the report page shows it (its token, its `next`). No worker runs here: the dispatcher
    # is not really queued (test_send_log_ui checks that it is).
    with mock.patch.object(app.extensions["celery"], "send_task"):
        response = post_form(admin_client, report_url, f"/admin/send-log/campaigns/{campaign_id}/retry-failed",
                             {"next": report_url})
    assert response.status_code == 302 and response.headers["Location"] == report_url
    # The 421 and the no-answer failures and the 2 cancelled: the report says so on return.
    assert "Sending 4 deliveries again." in admin_client.get(report_url).get_data(as_text=True)


def test_detail_page_links_to_the_report(app, admin_client):
    with app.app_context():
        campaign_id = seed_campaign()
    page = admin_client.get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert f'href="/admin/campaigns/{campaign_id}/report"' in page


def test_viewer_reads_the_report_without_the_retry_button(app, client):
    with app.app_context():
        campaign_id = seed_campaign()
    _viewer(app, client)
    page = client.get(f"/admin/campaigns/{campaign_id}/report").get_data(as_text=True)
    assert "May news" in page and "Retry" not in page and "Open in the send log" in page


def test_a_draft_report_says_what_to_do_and_unknown_ids_404(app, client):
    with app.app_context():
        draft = Campaign(name="Draft", subject="s", from_email="news@example.org")
        db.session.add(draft)
        db.session.commit()
        draft_id = draft.id
    _viewer(app, client, Role.MARKETER)
    page = client.get(f"/admin/campaigns/{draft_id}/report").get_data(as_text=True)
    assert "Nothing sent yet." in page and "Send now" in page and "<svg" not in page
    assert client.get("/admin/campaigns/999999/report").status_code == 404


@pytest.mark.parametrize("url", ["/admin/campaigns/1/report", "/admin/"])
def test_signed_out_visitors_are_sent_to_the_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


# In a real browser, with a realistic amount of data -------------------------------------------

def _seed_showcase() -> int:
    """A few campaigns, one sent an hour ago to ~2,400 people, and 90 days of signups; returns the sent one."""
    import random
    from datetime import timedelta

    from sqlalchemy import insert

    from newsletter.models import CampaignStatus, Delivery, Subscriber
    from newsletter.models.base import utcnow

    rng = random.Random(7)
    now = utcnow().replace(microsecond=0)
    db.session.execute(insert(Subscriber), [
        {"email": f"reader{i}@example.org", "status": "confirmed", "attributes": {},
         "created_at": now - timedelta(days=89 * (1 - (i / 1800) ** 0.7), hours=rng.random() * 20)}
        for i in range(1800)])
    start = now - timedelta(minutes=75)
    sent = Campaign(name="June product update", subject="What's new in June", from_email="news@example.org",
                    status=CampaignStatus.SENT, started_at=start, snapshot_at=start,
                    finished_at=start + timedelta(minutes=38, seconds=20), skipped_suppressed=37,
                    skipped_unsubscribed=112, skipped_unconfirmed=64, duplicates=211)
    sending = Campaign(name="Summer sale: last call", subject="48 hours left", from_email="news@example.org",
                       status=CampaignStatus.SENDING, started_at=now - timedelta(minutes=6), snapshot_at=now)
    older = Campaign(name="May digest", subject="May", from_email="news@example.org", status=CampaignStatus.SENT,
                     started_at=now - timedelta(days=12), finished_at=now - timedelta(days=12, minutes=-20))
    drafts = [Campaign(name="July newsletter", subject="July", from_email="news@example.org"),
              Campaign(name="Webinar invitation", subject="Join us", from_email="news@example.org",
                       status=CampaignStatus.SCHEDULED, send_at=now + timedelta(days=2))]
    db.session.add_all([older, sent, sending, *drafts])
    db.session.flush()
    codes = [(550, "550 5.1.1 <{}>: Recipient address rejected: User unknown"),
             (552, "552 5.2.2 Mailbox full"), (421, "421 4.7.0 Try again later, closing connection"),
             (None, "ConnectionResetError: [Errno 104] Connection reset by peer")]
    rows = []
    for i in range(2400):
        # Ramp up over five minutes, steady, then a tail as retries finish.
        minute = min(38, rng.triangular(0, 38, 12))
        at = start + timedelta(minutes=minute, seconds=rng.random() * 20)
        failed = rng.random() < 0.025
        code, message = rng.choices(codes, weights=[6, 2, 3, 1])[0] if failed else (250, "250 2.0.0 OK queued")
        rows.append({"campaign_id": sent.id, "email": f"reader{i}@example.org",
                     "status": "failed" if failed else "sent", "smtp_code": code,
                     "smtp_message": message.format(f"reader{i}@example.org"), "attempts": 1,
                     "created_at": start, "updated_at": at, "sent_at": None if failed else at, "worker": ""})
    for i in range(1200):
        done = i < 780
        at = now - timedelta(minutes=6) + timedelta(seconds=i * 0.45)
        rows.append({"campaign_id": sending.id, "email": f"sale{i}@example.org",
                     "status": "sent" if done else "pending", "smtp_code": 250 if done else None,
                     "smtp_message": "", "attempts": int(done),
                     "created_at": now, "updated_at": at, "sent_at": at if done else None, "worker": ""})
    for i in range(1900):
        at = older.started_at + timedelta(seconds=i * 0.6)
        rows.append({"campaign_id": older.id, "email": f"may{i}@example.org", "status": "sent", "smtp_code": 250,
                     "smtp_message": "", "attempts": 1, "created_at": at, "updated_at": at, "sent_at": at,
                     "worker": ""})
    db.session.execute(insert(Delivery), rows)
    db.session.commit()
    return sent.id


def test_dashboard_and_report_in_a_browser(app, live_server, admin, worker, transactional_worker, send_rate):
    import os
    import shutil
    from pathlib import Path


    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("no chromium executable")
    from playwright.sync_api import sync_playwright

    send_rate(0.01)  # the seeded "sending" campaign must not move under the screenshots
    with app.app_context():
        campaign_id = _seed_showcase()
    shots = Path(os.environ.get("SCREENSHOT_DIR") or Path(os.environ["INSTANCE_PATH"]) / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        viewports = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
        for device, viewport in viewports.items():
            page = browser.new_page(viewport=viewport)
            sign_in_page(page, live_server)
            page.wait_for_selector("#queues li.ok", timeout=15000)  # the JSON filled the queues panel
            assert page.locator("#queue-warning").is_hidden()
            page.screenshot(path=shots / f"dashboard_charts_{device}.png", full_page=True)
            assert page.locator(".chart-svg").count() == 3
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0

            page.goto(f"{live_server}/admin/campaigns/{campaign_id}/report")
            page.screenshot(path=shots / f"campaign_report_{device}.png", full_page=True)
            assert page.locator(".chart-svg rect.bar").count() > 30
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            page.close()
        browser.close()
