"""The DKIM page and the campaign's pre-flight panel in a real browser, desktop and phone."""
from __future__ import annotations

import pytest

from tests.support.web import sign_in_page
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits
from tests.web.test_deliverability_ui import keys, make_campaign

# The session sends with a VERP return path at example.org: the panel checks the From domain's own SPF.
# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)"),
              pytest.mark.usefixtures("no_verp")]


@pytest.mark.parametrize("device", VIEWPORTS)
def test_dkim_page_and_preflight_panel_in_a_browser(app, browser, live_server, admin, dns, shots, device):
    page = browser.new_page(viewport=VIEWPORTS[device])
    sign_in_page(page, live_server)

    page.goto(live_server + "/admin/settings/")
    page.click("a:has-text('DKIM')")
    page.wait_for_url(live_server + "/admin/settings/dkim")
    assert "No keys yet" in page.content()
    page.fill("#domain", "example.com")
    page.click("button:has-text('Generate key')")
    page.wait_for_selector(".flash-success")
    [key] = keys(app)
    dns.txt(key.record_name, key.record_value)
    dns.txt("example.com", "v=spf1 ip4:127.0.0.1 -all")
    dns.txt("_dmarc.example.com", "v=DMARC1; p=none")
    page.once("dialog", lambda dialog: dialog.dismiss())  # Delete asks first: dismissed, nothing happens
    page.click("button:has-text('Delete')")
    page.click("button:has-text('Activate')")
    page.wait_for_selector(".badge-active")
    page.click("a:has-text('Check DNS')")
    page.wait_for_selector(".dns-published")
    assert len(keys(app)) == 1
    page.screenshot(path=shots / f"dkim_{device}.png", full_page=True)
    assert_fits(page)
    page.screenshot(path=shots / f"dkim_{device}.png", full_page=True)

    campaign_id = make_campaign(app, '<p>Hi</p><p><a href="/relative">More</a> · '
                                     '<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")
    page.wait_for_selector("#preflight [data-check='text']")
    marks = {row.get_attribute("data-check"): row.get_attribute("class")
             for row in page.locator("#preflight li").all()}
    assert marks == {"spf": "pf-pass", "dkim": "pf-pass", "dmarc": "pf-pass", "size": "pf-pass",
                     "links": "pf-warn", "unsubscribe": "pf-pass", "text": "pf-pass"}
    page.click("button:has-text('Check again')")
    page.wait_for_selector("#preflight [data-check='text']")
    assert_fits(page)
    page.locator("#preflight").screenshot(path=shots / f"campaign_preflight_{device}.png")
    page.close()
