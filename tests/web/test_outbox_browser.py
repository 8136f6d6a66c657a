"""The outbox's HTML view in a real browser: a link in the sandboxed email opens in a new tab."""
import shutil

import pytest

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.web.test_outbox import catch, private_outbox

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")]


def test_a_link_in_the_html_view_opens_in_a_new_tab_and_scripts_stay_off(
        app, browser, live_server, admin, tmp_path, shots):
    target = live_server + "/static/app.css?from=email"
    html = (f'<!DOCTYPE html><html><head></head><body><p><a id="offer" href="{target}">Open the offer</a></p>'
            '<script>document.body.setAttribute("data-ran", "yes")</script></body></html>')
    with private_outbox(app, tmp_path) as directory:
        key = catch(directory, "reader@example.org", "A link to follow", html)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.goto(live_server + f"/admin/outbox/{key}")
        page.fill("#email", ADMIN_EMAIL)
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server + f"/admin/outbox/{key}")
        frame = page.frame_locator("iframe.email-frame")
        assert frame.locator("body").get_attribute("data-ran") is None  # the sandbox ran no script
        with context.expect_page() as opened:
            frame.locator("#offer").click()
        tab = opened.value
        tab.wait_for_load_state()
        assert tab.url == target and page.url == live_server + f"/admin/outbox/{key}"
        # the list beside the frame opens the same address in a new tab too
        assert page.locator("ol.outbox-links a").get_attribute("target") == "_blank"
        page.screenshot(path=shots / "outbox_message_links.png", full_page=True)
        context.close()
