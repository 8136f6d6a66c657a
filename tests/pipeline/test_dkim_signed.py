"""Every kind of mail leaves signed: a campaign, an API notification and a confirmation, through the real
workers and SMTP server, each verified by Mail::DKIM against the test's loopback DNS server.

Campaign mail carries List-Id, Precedence: bulk and Feedback-ID (all signed); transactional and
one-off mail carries none of them.
"""
from __future__ import annotations

import email
import email.policy
import time
import uuid

from newsletter.extensions import db
from newsletter.models import Role
from newsletter.services import settings, versioned
from newsletter.services.accounts import api_keys
from newsletter.services.deliverability import dkim
from tests.api.conftest import ApiClient
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.dkim import mail_dkim
from tests.support.net import wait_for
from tests.web.test_public import make_list

LIST_HEADERS = ("List-Id", "Precedence", "Feedback-ID", "List-Unsubscribe", "List-Unsubscribe-Post")


def keys_reach_the_workers() -> None:
    """A worker looks at the keys' version at most every CHECK_EVERY seconds (the documented
    "within about a second" of a change): wait that long, so the send sees this test's keys."""
    time.sleep(versioned.CHECK_EVERY + 0.5)


def signed_by(message: bytes, dns_port: int) -> list[str]:
    result, lines = mail_dkim(message, dns_port)
    assert result == "pass", lines
    return lines


def test_campaigns_notifications_and_confirmations_arrive_signed_and_verify(
        app, client, dns, worker, transactional_worker, smtp_server):
    with app.app_context():
        key = dkim.generate("example.com", selector="t1")
        dns.txt(key.record_name, key.record_value)
        dkim.activate(key.id)
        settings.save({"MAIL_DEFAULT_SENDER": "News <news@example.com>"}, None)
        keys_reach_the_workers()
        try:
            list_id, emails = make_audience(3, prefix=f"dk{uuid.uuid4().hex[:4]}")
            campaign_id = make_campaign([list_id])
            start(app, campaign_id)
            wait_until_status(campaign_id, "sent")
            api = ApiClient(client, api_keys.create_api_key("dkim test", Role.MARKETER)[1])
            db.session.commit()
            to = f"api-{uuid.uuid4().hex[:8]}@example.org"
            accepted = api.post("/api/v1/notifications", json={"to": to, "subject": "Your code", "text": "1234"})
            assert accepted.status_code == 202, accepted.get_json()
            double = make_list(app, "Double opt-in")
            joiner = f"join-{uuid.uuid4().hex[:8]}@example.org"
            assert client.post(f"/subscribe/{double}", data={"email": joiner}).status_code == 302
            wait_for(lambda: smtp_server.received.get(to) and smtp_server.received.get(joiner), 30,
                     message="the notification and the confirmation")
        finally:
            settings.save({"MAIL_DEFAULT_SENDER": None}, None)

    for address in emails:
        [raw] = smtp_server.received[address]
        assert signed_by(raw, dns.port) == ["pass d=example.com s=t1 a=rsa-sha256 pass"]
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["Feedback-ID"] == f"c{campaign_id}:l{list_id}:newsletter:{app.config['FEEDBACK_ID_SENDER']}"
        assert message["Precedence"] == "bulk" and message["List-Id"].endswith(f"<campaign-{campaign_id}.127.0.0.1>")
        signed = message["DKIM-Signature"].replace("\r\n", "").replace("\t", "").replace(" ", "")
        assert ("h=from:to:subject:date:message-id:mime-version:content-type:list-unsubscribe:"
                "list-unsubscribe-post:list-id:feedback-id;") in signed

    for address, kind in ((to, "notification"), (joiner, "confirmation")):
        [raw] = smtp_server.received[address]
        assert signed_by(raw, dns.port) == ["pass d=example.com s=t1 a=rsa-sha256 pass"], kind
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert message["From"].addresses[0].addr_spec == "news@example.com"
        assert [h for h in LIST_HEADERS if message[h] is not None] == [], kind
        assert message["Auto-Submitted"] == "auto-generated"


def test_without_an_active_key_mail_goes_out_unsigned(app, dns, worker, smtp_server):
    with app.app_context():
        pending = dkim.generate("example.com", selector="never")  # generated, never activated
        dns.txt(pending.record_name, pending.record_value)
        keys_reach_the_workers()  # and the keys an earlier test activated are gone from their caches
        list_id, [address] = make_audience(1, prefix=f"un{uuid.uuid4().hex[:4]}")
        campaign_id = make_campaign([list_id])
        start(app, campaign_id)
        wait_until_status(campaign_id, "sent")
    [raw] = smtp_server.received[address]
    assert b"DKIM-Signature" not in raw and mail_dkim(raw, dns.port)[0] == "none"
