"""The bounce parser over a corpus of real bounce messages (tests/data/bounces/LICENSES.md):
what each one is, its type, the failed recipients; accuracy printed and held to a floor."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from newsletter.services.deliverability import dsn, status_codes

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bounces"
EXPECTED: dict[str, dict] = json.loads((CORPUS / "expected.json").read_text())
# The recipients flufl.bounce's own test suite expects for its samples: labels written by others.
FLUFL_TEST_SUITE = {
    "dsn_01.txt": {"userx@example.com"}, "dsn_04.txt": {"userx@example.ch"}, "postfix_01.txt": {"xxxxx@local.ie"},
    "qmail_01.txt": {"userx@example.de"}, "exim_01.txt": {"userx@its.example.nl"},
    "yahoo_11.txt": {"bad_user@aol.com"}, "simple_45.txt": {"subscriber@earthlink.net"},
    "netscape_01.txt": {"aaaaa@corel.com", "bbbbb@corel.com"}, "smtp32_06.txt": {"absolute_garbage_addr@example.net"},
    "microsoft_04.txt": {"userx@example.com"}, "yale_01.txt": {"userx@cs.yale.edu", "userx@yale.edu"},
}
# Measured when this corpus was added (docs/deliverability.md "Bounce mailbox"): a change that
# makes the parser worse on real mail fails here.
FLOOR = {"verdict": 1.0, "type": 0.98, "recipients": 0.98}


def _parse(name: str) -> dsn.Parsed:
    return dsn.parse((CORPUS / name).read_bytes())


def test_corpus_accuracy(capsys):
    right = {"verdict": 0, "type": 0, "recipients": 0}
    counted = {"verdict": 0, "type": 0, "recipients": 0}
    wrong = []
    for name, expected in EXPECTED.items():
        parsed = _parse(name)
        got = {"verdict": parsed.verdict, "type": parsed.failures[0].type if parsed.failures else None,
               "recipients": sorted({f.email for f in parsed.failures if f.email})}
        want = {"verdict": expected["verdict"], "type": expected.get("type"), "recipients": expected.get("emails", [])}
        for key in right:
            if key != "verdict" and want["verdict"] not in (dsn.BOUNCE, dsn.COMPLAINT):
                continue
            counted[key] += 1
            if got[key] == want[key]:
                right[key] += 1
            else:
                wrong.append(f"{name}: {key} {got[key]!r}, expected {want[key]!r}")
    accuracy = {key: right[key] / counted[key] for key in right}
    with capsys.disabled():
        print(f"\nbounce corpus: {len(EXPECTED)} messages; " + ", ".join(
            f"{key} {right[key]}/{counted[key]} ({accuracy[key]:.1%})" for key in right))
        for line in wrong:
            print("  wrong:", line)
    for key, floor in FLOOR.items():
        assert accuracy[key] >= floor, f"{key} accuracy {accuracy[key]:.1%} fell below {floor:.0%}: {wrong}"


def test_corpus_covers_every_kind():
    verdicts = {entry["verdict"] for entry in EXPECTED.values()}
    types = {entry.get("type") for entry in EXPECTED.values()}
    assert {dsn.BOUNCE, dsn.COMPLAINT, dsn.AUTOREPLY, dsn.OTHER} <= verdicts
    assert {"hard", "soft", "complaint"} <= types
    assert len(EXPECTED) >= 100
    assert set(EXPECTED) == {str(p.relative_to(CORPUS)) for p in CORPUS.glob("*/*")}


@pytest.mark.parametrize("name,recipients", sorted(FLUFL_TEST_SUITE.items()))
def test_recipients_agree_with_flufl_bounce_test_suite(name, recipients):
    assert {f.email for f in _parse(f"flufl/{name}").failures} == recipients


@pytest.mark.parametrize("code,text,expected", [
    ("5.1.1", "user unknown", "hard"),
    ("4.2.2", "mailbox full", "soft"),
    ("5.2.2", "mailbox full", "soft"),       # the common convention: the owner can empty it
    ("5.0.0", "recipient reached disk quota", "soft"),   # a generic code: the words decide
    ("5.0.0", "no such user here", "hard"),
    ("5.0.0", "", "hard"),
    ("4.4.1", "no answer from host", "soft"),
    ("5.7.1", "temporarily deferred", "hard"),  # the code decides before the words
    ("550", "Requested action not taken: mailbox unavailable", "hard"),
    ("552", "Requested mail action aborted: exceeded storage allocation", "soft"),
    ("450", "user unknown", "soft"),
    ("", "The user's mailfolder is full.", "soft"),
    ("", "This account has been disabled or discontinued.", "hard"),
    ("2.0.0", "delivered", ""),
])
def test_classify(code, text, expected):
    assert status_codes.classify(code, text) == expected


def test_best_code_prefers_a_precise_quoted_code_to_a_generic_status():
    assert status_codes.best_code("5.0.0", "smtp; 550 5.1.1 <a@b.c>: Recipient address rejected") == "5.1.1"
    assert status_codes.best_code("5.2.2", "smtp; 550 5.1.1 nope") == "5.2.2"
    assert status_codes.best_code("", "smtp; 554 rejected") == "554"
    assert status_codes.enhanced_code("Mailman 2.0.13") == ""  # a version number, not a status


def test_a_dsn_names_the_delivery_it_returns():
    """The addresses the bounce went to (where the VERP token travels), the returned headers."""
    parsed = _parse("flufl/dsn_13.txt")
    assert parsed.is_bounce and parsed.event_id == parsed.message_id != ""
    assert parsed.envelope and all("@" in address for address in parsed.envelope)
    assert parsed.original.get("Message-ID")


def test_complaint_reads_the_reported_recipient_and_the_original():
    parsed = _parse("sisimai/arf-05.eml")
    assert parsed.verdict == dsn.COMPLAINT
    assert [f.email for f in parsed.failures] == ["fake.rcpt@example.com"]
    assert parsed.original["Message-ID"] == "<8A025E63-47F5-CDA0-78D2-C0E5A944FB10@example.net>"


def test_a_dmarc_failure_report_is_not_a_complaint():
    raw = (CORPUS / "sisimai/arf-11.eml").read_bytes().replace(b"Feedback-Type: abuse", b"Feedback-Type: auth-failure")
    assert dsn.parse(raw).verdict == dsn.OTHER


def test_a_success_notice_is_not_a_bounce():
    raw = (CORPUS / "flufl/dsn_13.txt").read_bytes()
    raw = re.sub(rb"(?im)^Action: *failed", b"Action: delivered", raw)
    raw = re.sub(rb"(?im)^Status: *5\.1\.1", b"Status: 2.0.0", raw)
    assert dsn.parse(raw).verdict == dsn.OTHER


def test_quoted_original_headers_in_a_plain_text_bounce():
    """qmail and old Exim quote the returned message in the text: its Message-ID is still found."""
    raw = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+d7.abcdefghijkl@example.org\r\n"
           b"Subject: failure notice\r\nMessage-ID: <q1@mx.example.net>\r\n\r\n"
           b"Hi. This is the qmail-send program at mx.example.net.\r\n"
           b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
           b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
           b"<gone@example.net>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
           b"--- Below this line is a copy of the message.\r\n\r\n"
           b"Return-Path: <bounces+d7.abcdefghijkl@example.org>\r\nMessage-ID: <3.7.0123abcd@example.org>\r\n"
           b"X-Newsletter-Delivery: 3.7\r\n\r\nHello\r\n")
    parsed = dsn.parse(raw)
    assert parsed.verdict == dsn.BOUNCE
    assert [(f.type, f.email, f.status_code) for f in parsed.failures] == [("hard", "gone@example.net", "5.1.1")]
    assert parsed.original == {"Message-ID": "<3.7.0123abcd@example.org>", "X-Newsletter-Delivery": "3.7"}
    assert "bounces+d7.abcdefghijkl@example.org" in parsed.envelope
    assert parsed.quoted_addresses == ("bounces+d7.abcdefghijkl@example.org",)


def test_without_a_message_id_the_event_id_is_a_hash_of_the_bytes():
    raw = b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered Mail\r\n\r\n550 5.1.1 <a@b.example>: unknown\r\n"
    first, again = dsn.parse(raw), dsn.parse(raw)
    assert first.event_id.startswith("sha256:") and first.event_id == again.event_id
    assert dsn.parse(raw + b"x").event_id != first.event_id


def test_garbage_is_not_a_bounce():
    for raw in (b"", b"\x00\xff" * 100, b"Subject: hello\r\n\r\njust a note",
                b"Content-Type: multipart/report\r\n\r\n"):
        assert not dsn.parse(raw).is_bounce


@pytest.mark.parametrize("headers", [
    b"From: Jo <jo@example.net>\r\nSubject: Please confirm your message\r\n",   # challenge-response
    b"From: Jo <jo@example.net>\r\nSubject: Re: news\r\nX-Autoreply: yes\r\n",
    b"From: Jo <jo@example.net>\r\nSubject: Re: news\r\nPrecedence: auto_reply\r\n",
    b"From: Jo <jo@example.net>\r\nSubject: Out of Office: news\r\n",
])
def test_automatic_replies_are_not_bounces(headers):
    body = b"Message-ID: <r@example.net>\r\n\r\nI am away; mail to jo@example.net is read later.\r\n"
    parsed = dsn.parse(headers + body)
    assert parsed.verdict == dsn.AUTOREPLY and not parsed.failures
