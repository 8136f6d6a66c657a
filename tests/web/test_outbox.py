"""An email sent by a worker reaches a real SMTP server and shows in the dev outbox."""
import email
import email.policy
import re
import uuid
from contextlib import contextmanager
from email.message import EmailMessage

import pytest

from newsletter.services import outbox
from tests.support.net import wait_for
from tests.support.web import post_form


def test_test_email_goes_through_the_worker_into_the_outbox(admin_client, worker, outbox_dir):
    to = f"check-{uuid.uuid4().hex[:8]}@example.org"
    response = post_form(admin_client, "/admin/", "/admin/test-email", {"to": to})
    assert response.status_code == 302 and response.location.endswith("/admin/outbox/")

    message = wait_for(
        lambda: next((m for m in outbox.list_messages(outbox_dir) if to in m.recipients), None),
        timeout=30, message=f"the test email to {to}",
    )
    parsed = email.message_from_bytes(message.raw, policy=email.policy.default)
    assert parsed["To"] == to
    assert "multipart/alternative" in [part.get_content_type() for part in parsed.walk()]
    assert "Delivery works" in message.body("html")
    assert "transactional queue" in message.body("plain")

    listing = admin_client.get("/admin/outbox/").get_data(as_text=True)
    assert to in listing and "Test email from your newsletter platform" in listing
    page = admin_client.get(f"/admin/outbox/{message.key}").get_data(as_text=True)
    # The HTML body is shown in a sandboxed iframe, escaped into srcdoc (never inline markup).
    iframe = re.search(r'<iframe class="email-frame" sandbox="([^"]*)" srcdoc="([^"]*)"', page)
    assert iframe and "&lt;h1" in iframe.group(2)
    # Popups only (links open in a new tab): never scripts, forms, same-origin or top navigation.
    assert iframe.group(1).split() == ["allow-popups", "allow-popups-to-escape-sandbox"]
    assert "&lt;base target=&#34;_blank&#34;&gt;" in iframe.group(2)
    assert f"X-Outbox-Rcpt-To: {to}" in page


def test_unknown_outbox_message_is_a_404(admin_client):
    assert admin_client.get("/admin/outbox/no-such-key").status_code == 404


def test_invalid_test_email_address_is_a_form_error_and_sends_nothing(admin_client, outbox_dir):
    before = len(outbox.list_messages(outbox_dir))
    response = post_form(admin_client, "/admin/", "/admin/test-email", {"to": "not an address"})
    assert response.status_code == 302
    assert "Invalid email address" in admin_client.get("/admin/").get_data(as_text=True)
    assert len(outbox.list_messages(outbox_dir)) == before


def test_outbox_is_absent_in_production(app, admin_client):
    app.config["OUTBOX_DIR"], saved = None, app.config["OUTBOX_DIR"]
    try:
        assert admin_client.get("/admin/outbox/").status_code == 404
    finally:
        app.config["OUTBOX_DIR"] = saved


@contextmanager
def private_outbox(app, directory):
    """The outbox pages reading a Maildir of the test's own (the session's is shared)."""
    app.config["OUTBOX_DIR"], saved = str(directory), app.config["OUTBOX_DIR"]
    try:
        yield str(directory)
    finally:
        app.config["OUTBOX_DIR"] = saved


def catch(directory, to, subject, html=None):
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "news@example.org", to, subject
    message.set_content("text")
    if html:
        message.add_alternative(html, subtype="html")
    return outbox.open_outbox(directory).add(message.as_bytes())


def test_outbox_pages_by_200_and_searches_recipient_and_subject(app, admin_client, tmp_path):
    with private_outbox(app, tmp_path) as directory:
        for i in range(450):
            catch(directory, f"reader{i}@example.org", "Weekly digest" if i % 3 else "Welcome")
        first = admin_client.get("/admin/outbox/").get_data(as_text=True)
        assert "Showing 1–200 of 450." in first and "Page 1 of 3" in first
        assert len(re.findall(r'href="/admin/outbox/[^"?/]+"', first)) == 200
        third = admin_client.get("/admin/outbox/?page=3").get_data(as_text=True)
        assert "Showing 401–450 of 450." in third and "Older →" not in third and "← Newer" in third

        found = admin_client.get("/admin/outbox/?to=READER1&subject=welcome").get_data(as_text=True)
        # reader1, reader1x and reader1xx with i % 3 == 0
        expected = sum(1 for i in range(450) if str(i).startswith("1") and i % 3 == 0)
        assert f"Showing 1–{expected} of {expected} matching (450 in the outbox)." in found
        assert "reader12@example.org" in found and "reader13@example.org" not in found
        assert 'value="READER1"' in found

        none = admin_client.get("/admin/outbox/?subject=nothing-like-this").get_data(as_text=True)
        assert "No message matches subject “nothing-like-this” among 450." in none
        assert admin_client.get("/admin/outbox/?page=99").status_code == 200
        assert admin_client.get("/admin/outbox/?page=abc").status_code == 200
        assert admin_client.get("/admin/outbox/?page=99999999999999999999999").status_code == 200


@pytest.mark.parametrize("html", ['<p><a href="https://example.org/offer">See the offer</a>'
                                  '<a href="javascript:alert(1)">bad</a></p>'])
def test_message_page_lists_its_links(app, admin_client, tmp_path, html):
    with private_outbox(app, tmp_path) as directory:
        key = catch(directory, "a@example.org", "Links", html)
        page = admin_client.get(f"/admin/outbox/{key}").get_data(as_text=True)
    assert "Links (1)" in page
    assert ('<a href="https://example.org/offer" target="_blank" rel="noopener noreferrer" class="break">'
            "https://example.org/offer</a>") in page
    assert "— See the offer" in page and 'href="javascript:' not in page
