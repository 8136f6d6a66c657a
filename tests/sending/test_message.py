"""Messages built by string formatting parse as valid MIME, and headers cannot be injected."""
import email
import email.policy

from newsletter.sending.message import build, message_id


def parse(envelope):
    return email.message_from_bytes(envelope.data, policy=email.policy.default)


def test_valid_multipart_alternative_utf8_with_encoded_headers():
    envelope = build(from_name="Zoë News", from_email="news@example.com", to="ann@example.com",
                     subject="Grüße — 50 % off", html="<p>Grüße ✓</p>", text="Grüße ✓\n",
                     message_id=message_id("news.example.com", 7, 42), reply_to="help@example.com",
                     extra_headers=[("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")])
    assert envelope.data.isascii() and b"\r\n" in envelope.data and b"\n\n" not in envelope.data.replace(b"\r\n", b"")
    message = parse(envelope)
    assert message.defects == []
    assert message["Subject"] == "Grüße — 50 % off"
    assert message["From"].addresses[0].display_name == "Zoë News"
    assert message["Message-ID"].startswith("<7.42.") and message["Message-ID"].endswith("@news.example.com>")
    assert message["Date"] and message["MIME-Version"] == "1.0" and message["Reply-To"] == "help@example.com"
    assert message.get_body(("html",)).get_content() == "<p>Grüße ✓</p>"
    assert message.get_body(("plain",)).get_content() == "Grüße ✓\n"


def test_cr_lf_in_any_value_cannot_add_a_header():
    envelope = build(from_name="Evil\r\nBcc: victim@example.com", from_email="news@example.com",
                     to="ann@example.com", subject="Hi\r\nX-Injected: yes\n\nbody", html="<p>x</p>", text="x",
                     message_id="<1@x>", extra_headers=[("List-Id", "a\r\nX-Also: injected")])
    message = parse(envelope)
    assert message["Bcc"] is None and message["X-Injected"] is None and message["X-Also"] is None
    assert "X-Injected: yes" in message["Subject"]
