"""Tracking in a real browser: a tracked campaign sent by the worker is opened, as the SMTP
server received it, in Chromium, which loads its pixel and follows a link; the campaign page then shows both.

The message's links point at BASE_URL (the worker's setting); the browser's requests to it are
routed to the test's live server, as DNS would send them to the real one.
"""
from __future__ import annotations

import email
import email.policy
import re

import pytest

from newsletter.services.engagement import links
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.net import wait_for

from .test_browser import CHROMIUM, browser, shots  # noqa: F401  (that module's Chromium and screenshot fixtures)

pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")

HTML = ('<html><body><h1>Spring sale</h1><p>Hello {{ subscriber.name }}</p>'
        '<p><a id="shop" href="https://shop.example.com/spring">See the offers</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>')


def test_opening_and_clicking_a_sent_message_shows_in_the_campaign_report(
        app, browser, live_server, admin, worker, beat, smtp_server, shots):  # noqa: F811  (fixtures)
    with app.app_context():
        list_id, emails = make_audience(2, prefix="browser-eng")
        campaign_id = make_campaign([list_id], html=HTML, tracking="anonymous")
        start(app, campaign_id)
        wait_until_status(campaign_id, "sent")
    # By recipient from the session's SMTP server, not the newest outbox entries: mail an earlier
    # test left queued may still be arriving and push this message out of any "newest N" window.
    raw = wait_for(lambda: smtp_server.received.get(emails[0]), 30, message="the campaign email at the SMTP server")[0]
    html = email.message_from_bytes(raw, policy=email.policy.default).get_body(preferencelist=("html",)).get_content()
    base = app.config["BASE_URL"]
    assert re.search(re.escape(base) + r"/o/[\w-]+", html) and re.search(re.escape(base) + r"/c/[\w-]+", html)

    # The live server runs in this process: forget links earlier tests cached under ids that
    # SQLite hands out again once their tables were emptied.
    links._urls.clear()
    page = browser.new_page()
    landed = []
    page.route(f"{base}/**", lambda route: route.continue_(url=route.request.url.replace(base, live_server)))
    page.route("https://shop.example.com/**", lambda route: (landed.append(route.request.url), route.fulfill(
        status=200, content_type="text/html", body="<h1>Offers</h1>")))
    with page.expect_response(lambda r: "/o/" in r.url) as pixel:
        page.set_content(html)
    assert pixel.value.status == 200
    page.screenshot(path=shots / "tracked_message.png", full_page=True)
    page.click("#shop")
    page.wait_for_selector("text=Offers")
    assert landed == ["https://shop.example.com/spring"]

    page.goto(live_server + f"/admin/campaigns/{campaign_id}")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + f"/admin/campaigns/{campaign_id}")

    def counted() -> bool:
        page.reload()
        rows = page.locator("#engagement tbody tr")
        if rows.count() < 2:
            return False
        opens, clicks = (rows.nth(i).locator("td").all_inner_texts() for i in range(2))
        human_or_machine = lambda cells: int(cells[0].replace(",", "")) + int(cells[2].replace(",", ""))  # noqa: E731
        return human_or_machine(opens) == 1 and human_or_machine(clicks) == 1

    wait_for(counted, 15, 0.5, "the open and the click on the campaign page")
    assert "https://shop.example.com/spring" in page.locator("#engagement").inner_text()
    page.screenshot(path=shots / "campaign_engagement.png", full_page=True)
    page.close()
