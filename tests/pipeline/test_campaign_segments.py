"""A campaign to a list and a segment, end to end on a real worker: the union of the list's and
the segment's confirmed, unsuppressed subscribers, each address exactly once, exclusions by reason."""
from __future__ import annotations

from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from newsletter.services.audience.segments import segments
from newsletter.services.campaigns import campaigns, recipients
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    start,
    wait_until_status,
)

PRO = {"match": "all", "rules": [{"type": "attribute", "key": "plan", "op": "equals", "value": "pro"}]}


def _outsiders() -> dict[str, list[str]]:
    """Subscribers on no list: some the segment matches (in every status), some it does not."""
    groups: dict[str, list[str]] = {"sent": [], "not_sent": []}
    statuses = ([SubscriberStatus.CONFIRMED] * 15 + [SubscriberStatus.UNCONFIRMED] * 2
                + [SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.CONFIRMED, SubscriberStatus.BOUNCED])
    for i, status in enumerate(statuses):
        address = f"s{i:03d}@example.com"
        db.session.add(Subscriber(email=address, name=f"Seg {i}", status=status,
                                  attributes={"plan": "pro", "city": "Segtown"}))
        groups["sent" if status == SubscriberStatus.CONFIRMED and i != 18 else "not_sent"].append(address)
    db.session.add(Suppression(email="s018@example.com", reason=SuppressionReason.MANUAL))
    for i in range(10):
        address = f"n{i:03d}@example.com"
        db.session.add(Subscriber(email=address, status=SubscriberStatus.CONFIRMED, attributes={"plan": "free"}))
        groups["not_sent"].append(address)
    db.session.commit()
    return groups


def test_a_list_and_a_segment_each_address_once(ctx, worker, beat, smtp_server):
    list_id, members = make_audience(40, prefix="g")
    # The first ten list members are in the segment too: sent once, counted as duplicates.
    db.session.execute(update(Subscriber).where(Subscriber.email.in_(members[:10]))
                       .values(attributes={"plan": "pro", "city": "Both"}))
    db.session.commit()
    outsiders = _outsiders()
    segment_id = segments.create("Pro", PRO).id
    campaign_id = make_campaign([list_id], segment_ids=[segment_id])
    assert campaigns.estimate_recipients([list_id], [segment_id]) == 55

    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    expected = members + outsiders["sent"]
    assert_exactly_once(smtp_server, expected)
    assert not any(address in smtp_server.received for address in outsiders["not_sent"])
    assert ledger(campaign_id) == {"sent": 55}
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.recipients, campaign.duplicates) == (55, 10)
    assert (campaign.skipped_unconfirmed, campaign.skipped_unsubscribed, campaign.skipped_suppressed) == (2, 1, 2)


def test_a_segment_alone_is_enough_to_send_and_the_snapshot_freezes_it(ctx, worker, beat, smtp_server):
    outsiders = _outsiders()
    segment_id = segments.create("Pro", PRO).id
    campaign_id = make_campaign([], segment_ids=[segment_id])
    campaigns.send_now(campaign_id)
    assert recipients.snapshot(campaign_id) == 15
    # Who joins the segment after the snapshot is not sent to; who leaves it still is.
    db.session.add(Subscriber(email="late@example.com", status=SubscriberStatus.CONFIRMED,
                              attributes={"plan": "pro"}))
    db.session.execute(update(Subscriber).where(Subscriber.email == outsiders["sent"][0])
                       .values(attributes={"plan": "free"}))
    db.session.commit()
    ctx.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
    wait_until_status(campaign_id, "sent")
    assert_exactly_once(smtp_server, outsiders["sent"])
    assert "late@example.com" not in smtp_server.received
    assert db.session.scalar(select(Subscriber.id).where(Subscriber.email == "late@example.com")) is not None
