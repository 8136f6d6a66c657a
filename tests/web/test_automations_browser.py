"""The automation pages in a real browser (Chromium), desktop and phone: create, add a step,
start; the report fits the screen."""
from __future__ import annotations

import pytest

from newsletter.models import OptIn
from newsletter.services.audience import lists
from tests.support.web import sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")]


@pytest.mark.parametrize("device", VIEWPORTS)
def test_create_add_a_step_and_start_in_a_browser(app, browser, live_server, admin, shots, device):
    with app.app_context():
        list_id = lists.create("Welcome", OptIn.SINGLE).id
    page = browser.new_page(viewport=VIEWPORTS[device])
    sign_in_page(page, live_server)
    page.goto(live_server + "/admin/automations/")
    page.click("text=Create your first automation")
    page.fill("#name", "Welcome series")
    page.select_option("#trigger", "subscribed")
    page.fill("#trigger_key", str(list_id))
    page.click("button:has-text('Create (paused)')")
    page.wait_for_selector("text=No steps yet")
    page.click("a:has-text('Send an email')")
    page.fill("#subject", "Welcome, {{ subscriber.name }}")
    page.fill("#html", "<p>Glad you are here.</p>")
    page.click("button:has-text('Add step')")
    page.wait_for_selector("text=step added")
    page.click("a:has-text('Wait')")
    page.fill("#minutes", "1440")
    page.fill("#at", "09:00")
    page.click("button:has-text('Add step')")
    page.wait_for_selector("text=step added")
    page.click("button:has-text('Start')")
    page.wait_for_selector("text=Running:")
    assert page.locator("button:has-text('Pause')").count() == 1
    assert_fits(page)
    page.screenshot(path=str(shots / f"automation_{device}.png"), full_page=True)
