"""The segment builder in a real browser (Chromium), desktop and phone: build rules with the
controls, see the live count and preview change, check the JSON follows, save."""
from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from newsletter.extensions import db
from newsletter.models import Segment, Subscriber, SubscriberStatus
from tests.support.web import sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")]


def _people(app) -> None:
    with app.app_context():
        db.session.add_all([Subscriber(email=f"b{i}@{'gmail.com' if i % 2 else 'example.org'}", name=f"Reader {i}",
                                       status=SubscriberStatus.CONFIRMED,
                                       attributes={"plan": "pro" if i < 4 else "free", "age": 20 + i})
                            for i in range(10)])
        db.session.commit()


@pytest.mark.parametrize("device", VIEWPORTS)
def test_build_count_preview_and_save_in_a_browser(app, browser, live_server, admin, shots, device):
    _people(app)
    page = browser.new_page(viewport=VIEWPORTS[device])
    sign_in_page(page, live_server)
    page.goto(live_server + "/admin/segments/")
    page.click("text=Build your first segment")
    page.wait_for_selector("[data-builder] .rule-group")
    expect(page.locator("[data-count]")).to_have_text("10")  # empty "all": everyone

    page.fill("#name", "Pro readers on Gmail")
    page.click("button:has-text('+ Condition')")
    row = page.locator(".rule-row").nth(0)
    row.locator("input[aria-label='Attribute name']").fill("plan")
    row.locator("input[aria-label='Value']").fill("pro")
    expect(page.locator("[data-count]")).to_have_text("4")
    page.click("button:has-text('+ Condition')")
    second = page.locator(".rule-row").nth(1)
    second.locator("select[aria-label='Condition']").select_option("email_domain")
    second.locator("input[aria-label='Domain']").fill("gmail.com")
    expect(page.locator("[data-count]")).to_have_text("2")
    assert page.locator("[data-preview] tbody tr").count() == 2
    assert "b1@gmail.com" in page.locator("[data-preview]").inner_text()

    page.click("summary:has-text('Rules as JSON')")
    rules = json.loads(page.locator("#rules").input_value())
    assert rules == {"match": "all", "rules": [
        {"type": "attribute", "key": "plan", "op": "equals", "value": "pro"},
        {"type": "email_domain", "op": "equals", "value": "gmail.com"}]}
    assert_fits(page)
    page.screenshot(path=shots / f"segment_builder_{device}.png", full_page=True)

    page.click("button:has-text('Create segment')")
    page.wait_for_selector(".flash-success")
    with app.app_context():
        assert db.session.query(Segment).one().rules == rules
    expect(page.locator("[data-count]")).to_have_text("2")
    page.close()
