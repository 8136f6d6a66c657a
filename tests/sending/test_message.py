"""Messages built by string formatting parse as valid MIME, and headers cannot be injected."""
import email
import email.policy

import pytest

from newsletter.sending.message import build, message_id

# one_pass (tests/conftest.py): pure functions: messages built in memory.
pytestmark = pytest.mark.one_pass


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


# The fast builder against the stdlib's construction of the same message --------------------------

TRICKY = [
    # (from_name, subject, text, html)
    ("Zoë Ünïcode", "Grüße — 50 % off", "Grüße ✓\n", "<p>Grüße ✓</p>"),
    ("", "A plain ASCII subject that is long enough to need folding: " + "words and more words " * 8,
     "x" * 5000 + "\n", "<p>" + "long line " * 1000 + "</p>"),
    ("Ελληνικά 日本語 🎉", "Ünïcode subject long enough to be split into several encoded words: " + "äöü ß " * 60,
     "", "<p>🎉</p>\r\n<p>two lines</p>"),
    ("Evil\r\nBcc: victim@example.com", "Hi\r\nX-Injected: yes\n\nbody\tand\ttabs", "a\r\n.\r\nb", "<p>.</p>"),
    ("O'Brien, \"Quotes\" (and) <brackets>", "=?utf-8?q?looks_encoded?= but is not", "=\n", "<p>=</p>"),
    ("", "x" * 120 + " a single word longer than a line", "", ""),
]


def reference_message(from_name, subject, text, html):
    from email.message import EmailMessage
    from email.utils import formataddr

    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = formataddr((" ".join(from_name.split()), "news@example.com"))
    message["To"] = "ann@example.com"
    message["Subject"] = " ".join(subject.split())
    message["Reply-To"] = "help@example.com"
    message["List-Id"] = "<campaign-1.example.com>"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)


@pytest.mark.parametrize("from_name, subject, text, html", TRICKY)
def test_the_fast_builder_says_what_the_stdlib_message_says(from_name, subject, text, html):
    envelope = build(from_name=from_name, from_email="news@example.com", to="ann@example.com", subject=subject,
                     html=html, text=text, message_id="<1.2.ab@example.com>", reply_to="help@example.com",
                     extra_headers=[("List-Id", "<campaign-1.example.com>")])
    ours, reference = parse(envelope), reference_message(from_name, subject, text, html)
    assert ours.defects == [] and all(part.defects == [] for part in ours.walk())
    for name in ("From", "To", "Reply-To", "List-Id"):
        assert str(ours[name]) == str(reference[name]), name
    # The subject as written (runs of whitespace one space). Not always the stdlib's: folding a
    # long non-ASCII subject it loses a space between two encoded words (the third case), and it
    # sends "=?utf-8?q?...?=" as written, which every reader decodes (the fifth).
    assert str(ours["Subject"]) == " ".join(subject.split())
    if len(subject) < 200 and "=?" not in subject:
        assert str(reference["Subject"]) == " ".join(subject.split())
    assert ours["From"].addresses == reference["From"].addresses
    for kind, written in (("plain", text), ("html", html)):
        # Ours carries the text as written; set_content ends it with a newline and writes CRLF.
        assert ours.get_body((kind,)).get_content() == written
        assert reference.get_body((kind,)).get_content().replace("\r\n", "\n").rstrip("\n") == \
            written.replace("\r\n", "\n").rstrip("\n")
    # On the wire: CRLF only, no line past 998 octets, header lines folded to 78 where a space allows.
    data = envelope.data
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    subject_lines = head.split(b"\r\nSubject: ", 1)[1].split(b"\r\n")
    subject_lines = [subject_lines[0]] + [line for line in subject_lines[1:] if line[:1] == b" "][:50]
    assert all(len(line) <= 78 for line in subject_lines[1:]) and len(subject_lines[0]) <= 78 - len("Subject: ")
    assert not any(name.lower().startswith((b"bcc", b"x-injected")) for name in head.split(b"\r\n"))


@pytest.mark.parametrize("text", ["", "a", "x" * 57, "x" * 58, "Grüße ✓\n" * 500, "\r\n" * 100])
def test_base64_parts_are_encodebytes_with_crlf(text):
    import base64

    from newsletter.sending.message import _b64

    assert _b64(text) == base64.encodebytes(text.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
