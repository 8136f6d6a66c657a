"""Missing data and test sends in a real browser (Debian's Chromium), desktop and phone.

The editor warns, as you type, how many recipients lack an attribute the body reads; the send
page shows a real recipient's subject; after "Send test" the campaign page follows the email
until the SMTP server has answered and links to it in the mail log. The page's CSP forbids
wait_for_function, so the waits poll locators.
"""
from __future__ import annotations

import uuid

import pytest

from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns
from tests.support.net import wait_for
from tests.support.web import sign_in_page

from .test_browser import CHROMIUM, VIEWPORTS, assert_fits

# one_pass (tests/conftest.py): pages' layout, scripts and accessibility in a browser; what they
# show from each database is checked by the client tests in tests/web, in both passes.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")]


def _login(page, live_server):
    sign_in_page(page, live_server)


@pytest.mark.parametrize("device", VIEWPORTS)
def test_warnings_example_subject_and_a_followed_test_send(app, browser, live_server, admin, transactional_worker,
                                                           smtp_server, shots, device):
    tag = uuid.uuid4().hex[:6]
    with app.app_context():
        list_id = lists.create(f"Readers {tag}").id
        subscribers.create(f"ana-{tag}@example.org", "Ana", {"city": "Lyon"}, list_ids=[list_id])
        subscribers.create(f"bob-{tag}@example.org", "Bob", list_ids=[list_id])
        subscribers.create(f"cy-{tag}@example.org", "Cy", list_ids=[list_id])
        campaign_id = campaigns.create(
            name=f"June {tag}", subject="{{ subscriber.name }}, the June news", from_email="news@example.org",
            html="<p>Hello {{ subscriber.name }}</p>", list_ids=[list_id]).id
    page = browser.new_page(viewport=VIEWPORTS[device])
    _login(page, live_server)

    # The editor: reading an attribute two of three recipients lack is warned about as you type.
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}/edit")
    box = page.locator('[data-preview="fields"]')
    page.fill("#html", "<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}</p>")
    wait_for(lambda: box.is_visible() and "attributes.city" in box.inner_text(), 15, 0.2, "the field warning")
    assert "2 of 3 recipients have no attributes.city" in box.inner_text()
    assert '{{ subscriber.attributes.city | default("friend") }}' in box.inner_text()
    # The sample subscriber has the audience's keys: the preview shows a real city, not a blank.
    wait_for(lambda: "from Lyon" in page.frame_locator("iframe.email-frame").locator("p").inner_text(), 15, 0.2,
             "the preview with the audience's attribute")
    assert_fits(page)
    page.screenshot(path=shots / f"campaign_editor_warnings_{device}.png", full_page=True)
    page.fill("#html", '<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city | default("here") }}</p>')
    wait_for(lambda: not box.is_visible(), 15, 0.2, "the warning gone once the attribute has a default")
    page.fill("#html", "<p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}</p>")
    page.click("button:has-text('Save')")
    page.wait_for_url(f"{live_server}/admin/campaigns/{campaign_id}")
    warning = page.locator(".field-warnings")  # counted by the page's script once it has loaded
    wait_for(lambda: "2 of 3 recipients have no attributes.city" in warning.inner_text(), 15, 0.2,
             "the counted warning on the campaign page")

    # The send confirmation: a real recipient's subject, rendered.
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}/send")
    assert page.locator("[data-example-subject]").inner_text() == "Ana, the June news"
    assert_fits(page)
    page.screenshot(path=shots / f"campaign_send_confirm_{device}.png", full_page=True)

    # A test send is followed until the server has it, and links to its mail-log entry.
    page.goto(f"{live_server}/admin/campaigns/{campaign_id}")
    to = f"test-{tag}@example.org"
    page.fill("#addresses", to)
    page.click("button:has-text('Send test of the saved version')")
    row = page.locator(".test-follow [data-test]")
    wait_for(lambda: row.count() == 1, 15, 0.2, "the followed test email")
    assert to in row.inner_text()
    wait_for(lambda: row.locator(".badge-sent").count() == 1, 30, 0.3, "the test email shown as sent")
    assert smtp_server.received.get(to)
    reply = row.locator("[data-test-reply]").inner_text()
    assert reply.startswith("250"), reply
    wait_for(lambda: "2 of 3 recipients have no" in page.locator(".field-warnings").inner_text(), 15, 0.2,
             "the counted warning after the test send")
    assert_fits(page)
    page.screenshot(path=shots / f"campaign_test_followed_{device}.png", full_page=True)
    row.locator("a:has-text('in the mail log')").click()
    page.wait_for_url(f"{live_server}/admin/send-log/mail/*")
    assert to in page.content()
    page.close()
