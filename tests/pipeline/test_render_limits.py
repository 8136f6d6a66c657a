"""A template that runs away for one recipient fails that recipient alone; the batch goes on."""
from __future__ import annotations

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Delivery
from tests.pipeline.conftest import (
    HTML,
    assert_totals_match_ledger,
    make_audience,
    make_campaign,
    start,
    wait_until_status,
)

# Harmless for the sample subscriber used when the campaign is saved; runaway for two recipients.
BOMBS = (HTML
         + "{% if subscriber.attributes.city == 'City2' %}{{ (subscriber.name * 30000000)|length }}{% endif %}"
         + "{% if subscriber.attributes.city == 'City4' %}{% set s = 'x' * 12000 %}"
           "{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}{% endif %}")


def test_a_runaway_render_fails_its_recipient_and_the_others_are_sent(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(6, prefix="bomb")
    campaign_id = make_campaign([list_id], html=BOMBS)
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    rows = {d.email: d for d in db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}
    too_big, too_slow = rows[emails[2]], rows[emails[4]]
    assert (too_big.status.value, too_slow.status.value) == ("failed", "failed")
    assert too_big.smtp_message.startswith("Template error: Rendering html stopped: “*” would make 240,000,000 "
                                           "characters, larger than the 2048 KB limit")
    assert too_slow.smtp_message.startswith("Template error: Rendering html stopped: it took longer than 2 s")
    others = [e for i, e in enumerate(emails) if i not in (2, 4)]
    assert {rows[e].status.value for e in others} == {"sent"}
    assert sorted(smtp_server.received) == sorted(others)
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.sent, campaign.failed) == (4, 2)
