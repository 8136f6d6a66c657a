"""The pages in a real browser (Debian's Chromium driven by Playwright), desktop and phone.

Screenshots land in $SCREENSHOT_DIR (default: the session's instance folder) to look at.
"""
import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.net import wait_for
from tests.support.web import sign_in_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")]

VIEWPORTS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


@pytest.fixture
def shots(platform_env) -> Path:
    path = Path(os.environ.get("SCREENSHOT_DIR") or Path(platform_env["INSTANCE_PATH"]) / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def assert_fits(page):
    """Nothing forces sideways scrolling (the phone layout check)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"page is {overflow}px wider than the viewport"


@pytest.mark.parametrize("device", VIEWPORTS)
def test_sign_in_dashboard_and_outbox_in_a_browser(browser, live_server, admin, worker, outbox_dir, shots, device):
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/admin/")
    assert page.url.startswith(live_server + "/login")
    assert_fits(page)
    page.screenshot(path=shots / f"login_{device}.png")

    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert page.locator(".field-error").inner_text().startswith("Wrong email or password")

    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/admin/")
    # The status list is filled in by the page's script from /admin/status.json.
    page.wait_for_selector('[data-check="workers"].ok', timeout=15000)
    assert page.locator(".status-list li.down").count() == 0
    assert_fits(page)
    page.screenshot(path=shots / f"dashboard_{device}.png", full_page=True)

    to = f"browser-{uuid.uuid4().hex[:6]}@example.org"
    page.fill("#to", to)
    page.click("text=Send test email")
    page.wait_for_url(live_server + "/admin/outbox/")
    assert "queued on the transactional lane" in page.locator(".flash").inner_text()

    def arrived():
        page.reload()
        return page.locator(f"tr:has-text('{to}') a").count() > 0

    wait_for(arrived, 30, 0.5, "the message in the outbox list")
    assert_fits(page)
    page.screenshot(path=shots / f"outbox_{device}.png", full_page=True)
    page.locator(f"tr:has-text('{to}') a").first.click()
    frame = page.frame_locator("iframe.email-frame")
    assert frame.locator("h1").inner_text().startswith("Delivery works")
    assert_fits(page)
    page.screenshot(path=shots / f"outbox_message_{device}.png", full_page=True)
    page.close()


@pytest.mark.parametrize("device", VIEWPORTS)
def test_one_off_mail_log_in_a_browser(browser, live_server, admin, transactional_worker, smtp_server, shots,
                                       device):
    """A test email sent from the dashboard shows up in Send log -> One-off mail, on a phone too."""
    page = browser.new_page(viewport=VIEWPORTS[device])
    sign_in_page(page, live_server)
    to = f"log-{uuid.uuid4().hex[:6]}@example.org"
    page.fill("#to", to)
    page.click("text=Send test email")
    wait_for(lambda: smtp_server.received.get(to), 30, message="the test email")

    page.goto(live_server + "/admin/send-log/")
    page.click("text=One-off mail")
    page.select_option("#kind", "test_email")
    page.fill("#q", to)
    page.click("button:has-text('Filter')")
    # The click navigates; reloading before that navigation has committed fails ("not attached").
    page.wait_for_url(re.compile(r".*/send-log/mail/\?.*kind=test_email"))
    filtered = page.url

    def sent():
        page.goto(filtered)
        return page.locator(f"tr:has-text('{to}') .badge-sent").count() == 1

    wait_for(sent, 30, 0.5, "the test email listed as sent")
    assert_fits(page)
    page.screenshot(path=shots / f"mail_log_{device}.png", full_page=True)
    page.locator(f"tr:has-text('{to}') a").first.click()
    assert page.locator("h1").inner_text() == to
    assert "this is a test email" in page.locator("pre").inner_text()  # an admin sees the (redacted) body
    assert_fits(page)
    page.screenshot(path=shots / f"mail_log_detail_{device}.png", full_page=True)
    page.close()
