"""An email sent by a worker reaches a real SMTP server and shows in the dev outbox."""
import email
import email.policy
import re
import uuid

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
    iframe = re.search(r'<iframe class="email-frame" sandbox srcdoc="([^"]*)"', page)
    assert iframe and "&lt;h1" in iframe.group(1)
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
