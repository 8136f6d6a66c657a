"""The bounce and complaint rules (services/deliverability/bounces.py), VERP addresses and the
identification of a message from what a bounce carries back."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from newsletter.extensions import db
from newsletter.models import (
    Bounce,
    BounceType,
    Campaign,
    Delivery,
    DeliveryStatus,
    MailingList,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from newsletter.models.base import utcnow
from newsletter.services.deliverability import bounces, identify, verp
from newsletter.services.deliverability.bounces import BounceReport
from tests.pipeline.conftest import make_audience, make_campaign

HARD, SOFT, COMPLAINT = BounceType.HARD, BounceType.SOFT, BounceType.COMPLAINT


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def sent_campaign(emails_list_id: int) -> tuple[int, dict[str, int]]:
    """A campaign with a `sent` delivery per member of the list; returns (id, {email: delivery id})."""
    campaign_id = make_campaign([emails_list_id])
    rows = db.session.execute(select(Subscriber.id, Subscriber.email)).all()
    now = utcnow()
    db.session.execute(insert(Delivery), [
        {"campaign_id": campaign_id, "subscriber_id": sid, "email": address, "status": DeliveryStatus.SENT,
         "created_at": now, "updated_at": now, "sent_at": now, "smtp_code": 250} for sid, address in rows])
    db.session.commit()
    ids = {address: did for address, did in db.session.execute(
        select(Delivery.email, Delivery.id).where(Delivery.campaign_id == campaign_id))}
    return campaign_id, ids


def subscriber(address: str) -> Subscriber:
    db.session.expire_all()
    return db.session.scalars(select(Subscriber).where(Subscriber.email == address)).one()


def suppression(address: str) -> Suppression | None:
    db.session.expire_all()
    return db.session.get(Suppression, address)


def test_a_hard_bounce_marks_the_subscriber_bounced_suppresses_and_counts_once(ctx):
    list_id, emails = make_audience(3, prefix="hard")
    campaign_id, deliveries = sent_campaign(list_id)
    first = bounces.record(BounceReport(HARD, "mailbox", delivery_id=deliveries[emails[0]], status_code="5.1.1",
                                        diagnostic="550 5.1.1 <x>: Recipient address rejected: User unknown",
                                        event_id="<dsn-1@mx>"))
    assert (first.status, first.action) == ("recorded", "suppressed")
    assert subscriber(emails[0]).status == SubscriberStatus.BOUNCED
    assert suppression(emails[0]).reason == SuppressionReason.HARD_BOUNCE
    assert "5.1.1" in suppression(emails[0]).note
    assert subscriber(emails[1]).status == SubscriberStatus.CONFIRMED and suppression(emails[1]) is None
    # A second DSN for the same delivery (another event) is recorded but counted once.
    again = bounces.record(BounceReport(HARD, "mailbox", delivery_id=deliveries[emails[0]], event_id="<dsn-2@mx>"))
    assert again.status == "recorded"
    campaign = db.session.get(Campaign, campaign_id)
    db.session.refresh(campaign)
    assert (campaign.bounced, campaign.complained) == (1, 0)
    row = db.session.get(Bounce, first.bounce_id)
    assert (row.campaign_id, row.subscriber_id, row.email) == (campaign_id, subscriber(emails[0]).id, emails[0])


def test_the_same_event_twice_is_a_duplicate_that_changes_nothing(ctx):
    list_id, emails = make_audience(1, prefix="dup")
    campaign_id, deliveries = sent_campaign(list_id)
    report = BounceReport(SOFT, "ses", delivery_id=deliveries[emails[0]], event_id="sns-message-1")
    assert bounces.record(report).status == "recorded"
    assert bounces.record(report).status == "duplicate"
    assert db.session.scalar(select(Bounce.id).where(Bounce.event_id == "sns-message-1")) is not None
    assert len(db.session.scalars(select(Bounce)).all()) == 1
    # The same id from another source is another event.
    assert bounces.record(BounceReport(SOFT, "mailgun", delivery_id=deliveries[emails[0]],
                                       event_id="sns-message-1")).status == "recorded"


def test_ids_that_match_nothing_are_unmatched_and_leave_no_row(ctx):
    assert bounces.record(BounceReport(HARD, "mailbox", delivery_id=987654)).status == "unmatched"
    assert bounces.record(BounceReport(HARD, "mailbox", notification_id=987654)).status == "unmatched"
    assert bounces.record(BounceReport(HARD, "mailbox")).status == "unmatched"
    assert db.session.scalars(select(Bounce)).all() == []


def test_an_address_without_a_subscriber_is_still_suppressed(ctx):
    result = bounces.record(BounceReport(HARD, "api", email="stranger@example.net", status_code="5.1.1"))
    assert (result.status, result.action) == ("recorded", "suppressed")
    assert suppression("stranger@example.net").reason == SuppressionReason.HARD_BOUNCE


def test_soft_bounces_suppress_only_at_the_rule_each_message_counted_once(ctx):
    list_id, emails = make_audience(1, prefix="soft")
    address = emails[0]
    delivery_ids = [sent_campaign(list_id)[1][address] for _ in range(3)]
    # Two delay notices for the first message are one soft bounce.
    assert bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[0], status_code="4.2.2",
                                       event_id="a")).action == "counted"
    assert bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[0], event_id="b")).action == "counted"
    assert bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[1], event_id="c")).action == "counted"
    assert subscriber(address).status == SubscriberStatus.CONFIRMED and suppression(address) is None
    third = bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[2], status_code="4.2.2",
                                        diagnostic="mailbox full", event_id="d"))
    assert third.action == "suppressed"
    assert subscriber(address).status == SubscriberStatus.BOUNCED
    assert suppression(address).reason == SuppressionReason.SOFT_BOUNCES


def test_old_soft_bounces_outside_both_windows_do_not_count(ctx):
    list_id, emails = make_audience(1, prefix="old")
    address = emails[0]
    delivery_ids = [sent_campaign(list_id)[1][address] for _ in range(8)]
    # Two soft bounces on the two oldest deliveries, 40 days ago: outside the last 5 and 30 days.
    for i in range(2):
        bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[i], event_id=f"old{i}"))
    db.session.execute(Bounce.__table__.update().values(created_at=utcnow() - timedelta(days=40)))
    db.session.commit()
    assert bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[7], event_id="new")).action == \
        "counted"
    assert subscriber(address).status == SubscriberStatus.CONFIRMED


def test_old_soft_bounces_on_the_last_deliveries_still_count(ctx):
    list_id, emails = make_audience(1, prefix="rare")
    address = emails[0]
    delivery_ids = [sent_campaign(list_id)[1][address] for _ in range(3)]
    # A subscriber mailed rarely: the last 5 deliveries reach back further than 30 days.
    for i in range(2):
        bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[i], event_id=f"r{i}"))
    db.session.execute(Bounce.__table__.update().values(created_at=utcnow() - timedelta(days=90)))
    db.session.commit()
    assert bounces.record(BounceReport(SOFT, "mailbox", delivery_id=delivery_ids[2], event_id="r2")).action == \
        "suppressed"


def test_a_complaint_unsubscribes_from_every_list_and_suppresses(ctx):
    list_id, emails = make_audience(2, prefix="spam")
    other_list = MailingList(name="Other")
    db.session.add(other_list)
    db.session.flush()
    other_list = other_list.id
    person = subscriber(emails[0])
    db.session.add(Subscription(subscriber_id=person.id, list_id=other_list, status=SubscriptionStatus.CONFIRMED))
    db.session.commit()
    campaign_id, deliveries = sent_campaign(list_id)
    result = bounces.record(BounceReport(COMPLAINT, "mailbox", delivery_id=deliveries[emails[0]], event_id="arf"))
    assert result.action == "complained"
    person = subscriber(emails[0])
    assert person.status == SubscriberStatus.COMPLAINED
    assert {s.status for s in person.subscriptions} == {SubscriptionStatus.UNSUBSCRIBED}
    assert len(person.subscriptions) == 2
    assert suppression(emails[0]).reason == SuppressionReason.COMPLAINT
    campaign = db.session.get(Campaign, campaign_id)
    db.session.refresh(campaign)
    assert (campaign.bounced, campaign.complained) == (0, 1)
    assert subscriber(emails[1]).status == SubscriberStatus.CONFIRMED


def test_a_complaint_outranks_an_earlier_unsubscribe_as_the_suppression_reason(ctx):
    list_id, emails = make_audience(1, prefix="unsub")
    db.session.add(Suppression(email=emails[0], reason=SuppressionReason.UNSUBSCRIBED_ALL))
    db.session.commit()
    bounces.record(BounceReport(COMPLAINT, "postmark", email=emails[0]))
    assert suppression(emails[0]).reason == SuppressionReason.COMPLAINT


def test_verp_addresses_round_trip_and_refuse_tampering(ctx):
    address = verp.return_path("d", 1234)
    local, domain = address.split("@")
    assert domain == "example.org" and local.startswith("bounces+d1234.") and address == address.lower()
    assert verp.parse(address) == verp.Ref("d", 1234)
    assert verp.parse(f"<{address.upper()}>") == verp.Ref("d", 1234)  # case folded by a relay
    assert verp.parse(address.replace("d1234", "d1235")) is None
    assert verp.parse(address.replace("d1234", "n1234")) is None
    assert verp.parse("bounces@example.org") is None
    assert verp.parse(verp.return_path("n", 7)) == verp.Ref("n", 7)


def test_without_a_bounce_address_there_is_no_return_path(ctx):
    ctx.config["BOUNCE_ADDRESS"] = ""
    try:
        assert verp.return_path("d", 1) is None
    finally:
        ctx.config["BOUNCE_ADDRESS"] = "bounces@example.org"


def test_identify_reads_verp_our_headers_and_message_ids(ctx):
    assert identify.from_headers({"To": f'"Bounces" <{verp.return_path("d", 5)}>'}) == verp.Ref("d", 5)
    assert identify.from_headers({"x-newsletter-delivery": "12.345"}) == verp.Ref("d", 345)
    assert identify.from_headers({"X-Newsletter-Notification": "77"}) == verp.Ref("n", 77)
    assert identify.from_headers({"Message-ID": "<12.345.0badc0de@news.example.com>"}) == verp.Ref("d", 345)
    assert identify.from_message_id("<n.9.0badc0de@news.example.com>") == verp.Ref("n", 9)
    assert identify.from_message_id("<CAF=random@mail.gmail.com>") is None
    assert identify.from_headers({"Subject": "hello"}) is None


def _state(campaign_ids: list[int]) -> tuple:
    """Everything the rules change, without ids: subscribers, suppressions, memberships, totals, reports."""
    db.session.expire_all()
    people = sorted((s.email, s.status.value) for s in db.session.scalars(select(Subscriber)))
    kept = sorted((s.email, s.reason.value) for s in db.session.scalars(select(Suppression)))
    memberships = sorted(s.status.value for s in db.session.scalars(select(Subscription)))
    totals = [(c.bounced, c.complained) for c in (db.session.get(Campaign, i) for i in campaign_ids)]
    rows = sorted((b.type.value, b.email, b.event_id) for b in db.session.scalars(select(Bounce)))
    return people, kept, memberships, totals, rows


def _mixed_batch(prefix: str) -> tuple[list[BounceReport], int]:
    """Every kind of report at once: hard, repeated soft up to the rule, a complaint after a bounce,
    a duplicate inside the batch and of an earlier report, an address without a delivery, unmatched ids."""
    list_id, emails = make_audience(6, prefix=prefix)
    campaign_id, deliveries = sent_campaign(list_id)
    _, later = sent_campaign(list_id)
    _, third = sent_campaign(list_id)
    d = [deliveries[e] for e in emails]
    bounces.record(BounceReport(SOFT, "mailbox", delivery_id=d[1], event_id=f"{prefix}-early"))
    batch = [
        BounceReport(HARD, "mailbox", delivery_id=d[0], status_code="5.1.1", event_id=f"{prefix}-1"),
        BounceReport(HARD, "mailbox", delivery_id=d[0], status_code="5.1.1", event_id=f"{prefix}-2"),
        BounceReport(SOFT, "mailbox", delivery_id=d[1], event_id=f"{prefix}-early"),  # recorded before
        BounceReport(SOFT, "mailbox", delivery_id=later[emails[1]], event_id=f"{prefix}-3"),
        BounceReport(SOFT, "mailbox", delivery_id=third[emails[1]], event_id=f"{prefix}-4"),  # the third: suppressed
        BounceReport(SOFT, "mailbox", delivery_id=d[2], event_id=f"{prefix}-5"),
        BounceReport(SOFT, "mailbox", delivery_id=d[2], event_id=f"{prefix}-5"),  # twice in the batch
        BounceReport(HARD, "mailbox", delivery_id=d[3], event_id=f"{prefix}-6"),
        BounceReport(COMPLAINT, "mailbox", delivery_id=d[3], event_id=f"{prefix}-7"),
        BounceReport(HARD, "mailbox", email=emails[4], event_id=f"{prefix}-8"),
        BounceReport(HARD, "mailbox", email="stranger@example.net", event_id=f"{prefix}-9"),
        BounceReport(HARD, "mailbox", delivery_id=987654, event_id=f"{prefix}-10"),
        BounceReport(HARD, "mailbox", event_id=f"{prefix}-11"),
    ]
    return batch, campaign_id


def test_a_batch_gives_the_same_results_and_state_as_one_report_at_a_time(app):
    outcomes = {}
    for how in ("one-by-one", "batch"):
        with app.app_context():
            batch, campaign_id = _mixed_batch("mix")
            results = ([bounces.record(r) for r in batch] if how == "one-by-one" else bounces.record_many(batch))
            outcomes[how] = ([(r.status, r.action) for r in results], _state([campaign_id]))
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
            db.session.commit()
    assert outcomes["batch"] == outcomes["one-by-one"]
    statuses, (people, kept, _memberships, totals, rows) = outcomes["batch"]
    assert [s for s, _ in statuses] == ["recorded", "recorded", "duplicate", "recorded", "recorded", "recorded",
                                        "duplicate", "recorded", "recorded", "recorded", "recorded", "unmatched",
                                        "unmatched"]
    assert statuses[4] == ("recorded", "suppressed") and statuses[8] == ("recorded", "complained")
    assert totals == [(4, 1)]  # d0..d3 bounced once each (d1 before the batch); d3 also complained
    assert ("mix00003@example.com", "complaint") in kept and ("stranger@example.net", "hard-bounce") in kept


def test_a_batch_with_a_bad_source_changes_nothing(ctx):
    list_id, emails = make_audience(1, prefix="bad")
    _, deliveries = sent_campaign(list_id)
    with pytest.raises(ValueError, match="unknown bounce source"):
        bounces.record_many([BounceReport(HARD, "mailbox", delivery_id=deliveries[emails[0]]),
                             BounceReport(HARD, "carrier-pigeon", email=emails[0])])
    assert db.session.scalars(select(Bounce)).all() == []
