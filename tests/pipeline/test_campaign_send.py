"""The send pipeline end to end: real worker, real broker, real SMTP server, real database."""
from __future__ import annotations

import email
import email.policy

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Delivery
from tests.pipeline.conftest import (assert_totals_match_ledger, ledger, make_audience, make_campaign, start,
                                     wait_until_status)


def test_500_recipients_each_get_exactly_one_personalised_valid_email(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(500)
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    assert smtp_server.duplicates() == {}
    assert sorted(smtp_server.received) == sorted(emails)
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.recipients, campaign.sent, campaign.failed) == (500, 500, 0)
    assert ledger(campaign_id) == {"sent": 500}

    raw = smtp_server.received["r00042@example.com"][0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "News for Person 42"
    assert message["From"].addresses[0].display_name == "Ünïcode Sender"
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Hello Person 42 from City42" in html and 'style="color: #123456' in html
    assert "Hello Person 42 from City42" in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http") and "mailto:" in unsubscribe
    assert message["Message-ID"].endswith("@127.0.0.1>") or "@" in message["Message-ID"]
    delivery = db.session.scalar(select(Delivery).where(Delivery.email == "r00042@example.com"))
    assert message["X-Newsletter-Delivery"] == f"{campaign_id}.{delivery.id}"
    assert (delivery.attempts, delivery.smtp_code) == (1, 250)
