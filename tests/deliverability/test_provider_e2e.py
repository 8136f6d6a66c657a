"""End to end: a campaign sent by the real worker to the SMTP server, then each provider's signed
event about one recipient, built from the message that recipient really got, posted over HTTP:
the subscribers end bounced or complained and the campaign's totals move, once."""
from __future__ import annotations

import base64
import email
import email.policy
import json

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Bounce, Campaign, Subscriber, Suppression
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.providers import (
    mailgun_payload,
    sendgrid_headers,
    sendgrid_keys,
    ses_bounce,
    sns_notification,
    sns_sign,
)

MAILGUN_KEY = "key-e2e-3ax6xnjp29jd6fds4gc373sgvjx"


def _sent(smtp_server, address: str) -> tuple[email.message.EmailMessage, str]:
    """The message `address` received and its envelope sender."""
    raw = smtp_server.received[address][0]
    return email.message_from_bytes(raw, policy=email.policy.default), smtp_server.senders[address][0]


def arf(original: str) -> str:
    """An ISP's complaint (RFC 5965 feedback report) carrying the original message."""
    return ("From: <feedback@isp.example>\r\nTo: <pm_bounces@pm.mtasv.net>\r\nSubject: complaint\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"arf\"\r\n"
            "\r\n--arf\r\nContent-Type: text/plain\r\n\r\nA complaint about a message from your server.\r\n"
            "--arf\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: ISP-FBL/1.0\r\n"
            "Version: 1\r\n\r\n--arf\r\nContent-Type: message/rfc822\r\n\r\n" + original + "\r\n--arf--\r\n")


def _statuses(emails: list[str]) -> dict[str, str]:
    db.session.expire_all()
    return {address: status.value for address, status in
            db.session.execute(select(Subscriber.email, Subscriber.status).where(Subscriber.email.in_(emails)))}


def _totals(campaign_id: int) -> tuple[int, int]:
    db.session.expire_all()
    campaign = db.session.get(Campaign, campaign_id)
    return campaign.bounced, campaign.complained


def test_each_providers_event_bounces_or_complains_its_recipient(ctx, worker, beat, smtp_server, client, settings,
                                                                  sns):
    sendgrid_key, sendgrid_public = sendgrid_keys()
    settings(SENDGRID_WEBHOOK_PUBLIC_KEY=sendgrid_public, MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY,
             POSTMARK_WEBHOOK_USER="pm", POSTMARK_WEBHOOK_PASSWORD="pm-e2e-password", POSTMARK_WEBHOOK_IPS=[],
             PROVIDER_WEBHOOK_MAX_AGE=300.0)
    list_id, emails = make_audience(6, prefix="prov")
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    ses_to, sendgrid_to, mailgun_to, postmark_to, postmark_bare, untouched = emails
    assert _totals(campaign_id) == (0, 0)

    # Amazon SES: a permanent bounce, with the original headers and envelope sender SES echoes.
    message, envelope_from = _sent(smtp_server, ses_to)
    assert envelope_from.startswith("bounces+d")  # VERP (BOUNCE_ADDRESS is set for the tests)
    headers = [{"name": name, "value": str(value)} for name, value in message.items()]
    event = ses_bounce(ses_to, "Permanent", headers=headers, message_id=message["Message-ID"])
    event["mail"]["source"] = envelope_from
    notification = sns_sign(sns_notification(event, message_id="e2e-sns-1"), sns.key, f"{sns.base}/cert.pem", "2")
    response = client.post("/webhooks/ses", data=json.dumps(notification),
                           headers={"x-amz-sns-message-type": "Notification"}, content_type="text/plain")
    assert (response.status_code, response.json["recorded"]) == (200, 1), response.json
    # SNS delivers at least once: the same notification again changes nothing.
    again = client.post("/webhooks/ses", data=json.dumps(notification), content_type="text/plain")
    assert again.json["duplicate"] == 1

    # SendGrid: a spam report naming our Message-ID (smtp-id).
    body = json.dumps([{"email": sendgrid_to, "event": "spamreport", "sg_event_id": "e2e-sg-1",
                        "timestamp": 1765022400, "smtp-id": _sent(smtp_server, sendgrid_to)[0]["Message-ID"]}]).encode()
    response = client.post("/webhooks/sendgrid", data=body, headers=sendgrid_headers(body, sendgrid_key))
    assert (response.status_code, response.json["recorded"]) == (200, 1), response.json

    # Mailgun: a permanent failure, our Message-ID without its brackets as Mailgun shows it.
    mailgun_mid = _sent(smtp_server, mailgun_to)[0]["Message-ID"].strip("<>")
    payload = mailgun_payload(MAILGUN_KEY, {"event": "failed", "severity": "permanent", "id": "e2e-mg-1",
                                            "recipient": mailgun_to, "timestamp": 1765022400.1,
                                            "delivery-status": {"code": 550, "message": "5.1.1 No such user"},
                                            "message": {"headers": {"message-id": mailgun_mid}}})
    response = client.post("/webhooks/mailgun", json=payload)
    assert (response.status_code, response.json["recorded"]) == (200, 1), response.json

    # Postmark: a spam complaint with its content (the ISP's ARF report holding our message)...
    auth = {"Authorization": "Basic " + base64.b64encode(b"pm:pm-e2e-password").decode()}
    original = smtp_server.received[postmark_to][0].decode()
    response = client.post("/webhooks/postmark", headers=auth, json={
        "RecordType": "SpamComplaint", "ID": 991, "Type": "SpamComplaint", "TypeCode": 100001, "Email": postmark_to,
        "BouncedAt": "2026-12-06T12:00:00Z", "Details": "Test spam complaint details", "Content": arf(original)})
    assert (response.status_code, response.json["recorded"]) == (200, 1), response.json
    # ... and a hard bounce without content: only the address is known, so the subscriber is
    # bounced but no delivery (and no campaign total) is named.
    response = client.post("/webhooks/postmark", headers=auth, json={
        "RecordType": "Bounce", "ID": 992, "Type": "HardBounce", "TypeCode": 1, "Email": postmark_bare,
        "Details": "smtp;550 5.1.1 unknown user"})
    assert (response.status_code, response.json["recorded"]) == (200, 1), response.json

    assert _statuses(emails) == {ses_to: "bounced", sendgrid_to: "complained", mailgun_to: "bounced",
                                 postmark_to: "complained", postmark_bare: "bounced", untouched: "confirmed"}
    assert _totals(campaign_id) == (2, 2)
    db.session.expire_all()
    assert {row.email for row in db.session.scalars(select(Suppression))} == {ses_to, sendgrid_to, mailgun_to,
                                                                               postmark_to, postmark_bare}
    rows = {(row.source, row.email): row for row in db.session.scalars(select(Bounce))}
    assert len(rows) == 5
    named = [row for (source, address), row in rows.items() if address != postmark_bare]
    assert all(row.campaign_id == campaign_id and row.delivery_id for row in named)
    rows = {source: row for (source, address), row in rows.items() if address != postmark_bare}
    assert (rows["ses"].status_code, rows["ses"].event_id) == ("5.1.1", "e2e-sns-1")
    assert (rows["mailgun"].status_code, rows["mailgun"].event_id) == ("550", "e2e-mg-1")
