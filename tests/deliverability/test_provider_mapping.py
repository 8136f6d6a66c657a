"""Each provider's events mapped to BounceReports: which are hard, soft, complaints or ignored,
and how the delivery is found in what the provider echoes (our headers, Message-ID, VERP)."""
from __future__ import annotations

import pytest

from newsletter.services.deliverability import verp
from newsletter.services.deliverability.bounces import BounceType
from newsletter.services.deliverability.providers import common, mailgun, postmark, sendgrid, ses
from tests.support.providers import ses_bounce, ses_complaint

HARD, SOFT, COMPLAINT = BounceType.HARD, BounceType.SOFT, BounceType.COMPLAINT
OUR_MESSAGE_ID = "<12.345.0123abcd@news.example.com>"  # campaign 12, delivery 345


@pytest.fixture(autouse=True)
def _context(ctx):
    yield


@pytest.mark.parametrize("ses_type, expected", [("Permanent", HARD), ("Transient", SOFT), ("Undetermined", SOFT)])
def test_ses_bounce_types(ses_type, expected):
    [report] = ses.reports(ses_bounce("Gone@Example.com", ses_type), "sns-1")
    assert (report.type, report.source, report.email, report.event_id) == (expected, "ses", "gone@example.com",
                                                                              "sns-1")
    assert report.status_code == "5.1.1" and "User unknown" in report.diagnostic
    assert report.occurred_at is not None and report.occurred_at.year == 2026


def test_ses_finds_the_delivery_in_our_echoed_header_then_message_id():
    headers = [{"name": "X-Newsletter-Delivery", "value": "12.345"}, {"name": "Subject", "value": "News"}]
    [by_header] = ses.reports(ses_bounce("a@example.com", headers=headers), "sns-2")
    assert (by_header.delivery_id, by_header.notification_id) == (345, None)
    [by_id] = ses.reports(ses_bounce("a@example.com", message_id=OUR_MESSAGE_ID), "sns-3")
    assert by_id.delivery_id == 345
    [notification] = ses.reports(ses_bounce("a@example.com", headers=[{"name": "X-Newsletter-Notification",
                                                                        "value": "77"}]), "sns-4")
    assert (notification.delivery_id, notification.notification_id) == (None, 77)
    [by_email] = ses.reports(ses_bounce("a@example.com", message_id="<0100018c-ses-own@email.amazonses.com>"), "s")
    assert (by_email.delivery_id, by_email.notification_id, by_email.email) == (None, None, "a@example.com")


def test_ses_finds_the_delivery_in_the_verp_envelope_sender(app):
    address = verp.return_path("d", 4321)
    if address is None:
        pytest.skip("BOUNCE_ADDRESS is not set")
    event = ses_bounce("a@example.com")
    event["mail"]["source"] = address
    [report] = ses.reports(event, "sns-5")
    assert report.delivery_id == 4321


def test_ses_complaints_and_not_spam():
    [report] = ses.reports(ses_complaint("angry@example.com", headers=[{"name": "X-Newsletter-Delivery",
                                                                       "value": "1.2"}]), "sns-6")
    assert (report.type, report.email, report.delivery_id, report.diagnostic) == (COMPLAINT, "angry@example.com", 2,
                                                                                 "abuse")
    assert ses.reports(ses_complaint("fine@example.com", feedback="not-spam"), "sns-7") == []


def test_ses_several_recipients_are_several_events_and_name_no_delivery():
    event = ses_bounce("a@example.com", headers=[{"name": "X-Newsletter-Delivery", "value": "1.2"}])
    event["bounce"]["bouncedRecipients"].append({"emailAddress": "b@example.com", "status": "5.1.1"})
    reports = ses.reports(event, "sns-8")
    assert [(r.email, r.event_id, r.delivery_id) for r in reports] == [
        ("a@example.com", "sns-8/a@example.com", None), ("b@example.com", "sns-8/b@example.com", None)]


@pytest.mark.parametrize("event", [
    {"notificationType": "Delivery", "mail": {}}, {"eventType": "Open"}, {}, {"notificationType": "Bounce"},
    {"notificationType": "Bounce", "bounce": {"bouncedRecipients": "x"}},
    {"notificationType": "Bounce", "bounce": {"bouncedRecipients": [1, None, {"emailAddress": 5}]}},
    {"notificationType": "Bounce", "mail": {"headers": 7},
     "bounce": {"bouncedRecipients": [{"emailAddress": "a@b.c"}]}},
])
def test_ses_odd_events_never_raise(event):
    assert all(r.email == "a@b.c" for r in ses.reports(event, "sns-9"))


@pytest.mark.parametrize("event, expected", [
    ({"event": "bounce", "type": "bounce"}, HARD),
    ({"event": "bounce", "type": "blocked"}, SOFT),
    ({"event": "bounce"}, HARD),
    ({"event": "dropped", "reason": "Bounced Address"}, HARD),
    ({"event": "dropped", "reason": "Unsubscribed Address"}, None),
    ({"event": "spamreport"}, COMPLAINT),
    ({"event": "deferred"}, None),
    ({"event": "delivered"}, None),
])
def test_sendgrid_event_types(event, expected):
    report = sendgrid.to_report({"email": "x@example.com", "sg_event_id": "e1", "timestamp": 1765022400, **event})
    assert (report.type if report else None) == expected
    if report:
        assert (report.source, report.event_id, report.email) == ("sendgrid", "e1", "x@example.com")


def test_sendgrid_finds_the_delivery_by_smtp_id_and_takes_the_status():
    report = sendgrid.to_report({"email": "x@example.com", "event": "bounce", "type": "bounce", "status": "5.1.1",
                                 "reason": "550 5.1.1 no such user", "sg_event_id": "e2", "smtp-id": OUR_MESSAGE_ID})
    assert (report.delivery_id, report.status_code, report.diagnostic) == (345, "5.1.1", "550 5.1.1 no such user")


@pytest.mark.parametrize("data, expected", [
    ({"event": "failed", "severity": "permanent"}, HARD),
    ({"event": "failed", "severity": "temporary"}, SOFT),
    ({"event": "failed"}, None),
    ({"event": "complained"}, COMPLAINT),
    ({"event": "delivered"}, None),
])
def test_mailgun_event_types(data, expected):
    report = mailgun.to_report({"recipient": "x@example.com", "id": "mg-1", **data})
    assert (report.type if report else None) == expected


def test_mailgun_finds_the_delivery_by_message_id_without_brackets():
    report = mailgun.to_report({"event": "failed", "severity": "permanent", "recipient": "x@example.com", "id": "mg-2",
                                "timestamp": 1765022400.25, "delivery-status": {"code": 550, "message": "No such user"},
                                "message": {"headers": {"message-id": OUR_MESSAGE_ID.strip("<>")}}})
    assert (report.delivery_id, report.status_code, report.diagnostic, report.event_id) == (345, "550", "No such user",
                                                                                           "mg-2")


@pytest.mark.parametrize("kind, expected", [
    ("HardBounce", HARD), ("BadEmailAddress", HARD), ("SoftBounce", SOFT), ("Transient", SOFT), ("DnsError", SOFT),
    ("Blocked", SOFT), ("Unknown", SOFT), ("SpamComplaint", COMPLAINT), ("AutoResponder", None),
    ("ChallengeVerification", None), ("Unsubscribe", None), ("AddressChange", None), ("ManuallyDeactivated", None),
])
def test_postmark_bounce_types(kind, expected):
    report = postmark.to_report({"RecordType": "Bounce", "Type": kind, "ID": 42, "Email": "x@example.com"})
    assert (report.type if report else None) == expected
    if report:
        assert (report.source, report.event_id) == ("postmark", "42")


def test_postmark_spam_complaint_record_and_metadata():
    report = postmark.to_report({"RecordType": "SpamComplaint", "ID": 43, "Type": "SpamComplaint",
                                 "Email": "x@example.com", "Metadata": {"newsletter-delivery": "12.345"},
                                 "Details": "Test spam complaint details", "BouncedAt": "2026-12-06T12:00:00Z"})
    assert (report.type, report.delivery_id, report.event_id) == (COMPLAINT, 345, "43")
    bounce = postmark.to_report({"RecordType": "Bounce", "Type": "HardBounce", "ID": 44, "Email": "x@example.com",
                                 "Details": "smtp;550 5.1.1 The email account does not exist"})
    assert bounce.status_code == "5.1.1"
    assert postmark.to_report({"RecordType": "Delivery", "Email": "x@example.com"}) is None


def test_common_helpers():
    assert common.status_in("smtp; 552 5.2.2 Mailbox full") == "5.2.2"
    assert common.status_in("550 rejected") == "550"
    assert common.status_in("") == ""
    assert common.metadata_headers({"newsletter_delivery": "1.2", "X-Newsletter-Notification": 9, "other": "x"}) == {
        "X-Newsletter-Delivery": "1.2", "X-Newsletter-Notification": "9"}
    assert common.metadata_headers(["not", "a", "mapping"]) == {}
    assert common.text({"a": 1}) == "" and common.text("a\x00\n b" * 300) == ("a b" * 300)[:500]
    common.check_fresh("1000", 300, now=1200)
    for stamp in ("1000", "1800", "x", None):
        with pytest.raises(common.Refused):
            common.check_fresh(stamp, 300, now=1400)


def test_postmark_finds_the_delivery_in_the_bounce_content():
    content = ("From: MAILER-DAEMON@mx.example.net\r\nTo: pm_bounces@pm.mtasv.net\r\nSubject: Undelivered\r\n"
               "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
               "\r\n--b\r\nContent-Type: text/plain\r\n\r\nNo such user.\r\n--b\r\n"
               "Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
               "Final-Recipient: rfc822; x@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\n"
               "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <other@pm.example>\r\n"
               "X-Newsletter-Delivery: 12.345\r\nSubject: News\r\n\r\n--b--\r\n")
    record = {"RecordType": "Bounce", "Type": "HardBounce", "ID": 45, "Email": "x@example.com", "Content": content}
    assert postmark.to_report(record).delivery_id == 345
    for garbage in ("", "not a message", 5, "Content-Type: message/rfc822\r\n\r\n", "Content-Type: multipart/x\r\n"):
        assert postmark.to_report({**record, "Content": garbage}).delivery_id is None
