"""GDPR export holds everything stored about a person; erasure removes exactly the personal data."""
import json

import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import ConsentRecord, Delivery, Subscriber, Subscription
from newsletter.services.audience import gdpr, lists, subscribers, suppressions
from newsletter.services.campaigns import campaigns, recipients


@pytest.fixture
def person(app):
    with app.app_context():
        news = lists.create("News", "single")
        other = subscribers.create("other@example.com", name="Other", list_ids=[news.id])
        anna = subscribers.create("Anna@Example.com", name="Anna K", attributes={"city": "Oslo"}, list_ids=[news.id])
        campaign = campaigns.create(name="C1", subject="Hi", from_email="n@example.com", html="<p>x</p>",
                                    list_ids=[news.id])
        # A draft: the session's beat sweeper only acts on campaigns that are sending.
        recipients.snapshot(campaign.id)
        yield anna.id, other.id, campaign.id


def test_export_holds_profile_memberships_consent_and_deliveries(app, person):
    anna_id, _, campaign_id = person
    with app.app_context():
        data = gdpr.export_subscriber(anna_id)
    json.dumps(data)  # JSON-ready
    assert data["subscriber"]["email"] == "anna@example.com" and data["subscriber"]["attributes"] == {"city": "Oslo"}
    assert [s["list"] for s in data["subscriptions"]] == ["News"]
    assert [c["source"] for c in data["consent"]] == ["admin"]
    assert [(d["campaign"], d["email"], d["status"]) for d in data["deliveries"]] == [
        ("C1", "anna@example.com", "pending")]


def test_erasure_removes_personal_data_and_keeps_anonymous_counts(app, person):
    anna_id, other_id, campaign_id = person
    with app.app_context():
        gdpr.erase_subscriber(anna_id)
        anna = db.session.get(Subscriber, anna_id)
        assert anna.email.endswith("@erased.invalid") and "anna" not in anna.email
        assert (anna.name, anna.attributes) == ("", {})
        assert db.session.scalar(select(func.count()).select_from(ConsentRecord)
                                 .where(ConsentRecord.subscriber_id == anna_id)) == 0
        assert db.session.scalar(select(func.count()).select_from(Subscription)
                                 .where(Subscription.subscriber_id == anna_id)) == 0
        emails = set(db.session.scalars(select(Delivery.email).where(Delivery.campaign_id == campaign_id)))
        assert emails == {anna.email, "other@example.com"}  # the ledger row stays, without the address
        assert suppressions.is_suppressed("anna@example.com")  # never re-imported by accident
        untouched = db.session.get(Subscriber, other_id)
        assert (untouched.email, untouched.name) == ("other@example.com", "Other")
        assert "anna@example.com" not in json.dumps(gdpr.export_subscriber(anna_id))


def test_notifications_are_exported_and_erased_with_the_person(app, person):
    from newsletter.models import Notification

    anna_id, other_id, _ = person
    with app.app_context():
        db.session.add_all([
            Notification(email="anna@example.com", subject="Your receipt", text="Total 12", data={"total": 12}),
            Notification(subscriber_id=anna_id, email="anna@example.com", subject="Reset", text="Link"),
            Notification(email="other@example.com", subject="Hello other", text="Hi"),
        ])
        db.session.commit()
        assert [n["subject"] for n in gdpr.export_subscriber(anna_id)["notifications"]] == ["Your receipt", "Reset"]
        gdpr.erase_subscriber(anna_id)
        rows = {n.subject: n for n in db.session.scalars(select(Notification))}
        assert set(rows) == {"(erased)", "Hello other"}
        erased = [n for n in db.session.scalars(select(Notification)) if n.subject == "(erased)"]
        assert len(erased) == 2 and all(n.email.endswith("@erased.invalid") and n.data == {} and n.text == ""
                                        for n in erased)
        assert rows["Hello other"].email == "other@example.com"


def test_bounces_are_exported_and_erased_with_the_person_keeping_the_campaign_count(app, person):
    from newsletter.models import Bounce, BounceType, Campaign
    from newsletter.services.deliverability import bounces

    anna_id, _, campaign_id = person
    with app.app_context():
        delivery_id = db.session.scalar(select(Delivery.id).where(Delivery.subscriber_id == anna_id))
        bounces.record(bounces.BounceReport(BounceType.SOFT, "mailbox", delivery_id=delivery_id, status_code="4.2.2",
                                            diagnostic="452 4.2.2 <anna@example.com>: mailbox full"))
        [exported] = gdpr.export_subscriber(anna_id)["bounces"]
        assert (exported["type"], exported["email"], exported["campaign_id"]) == ("soft", "anna@example.com",
                                                                                   campaign_id)
        gdpr.erase_subscriber(anna_id)
        row = db.session.scalars(select(Bounce)).one()
        assert row.email.endswith("@erased.invalid") and row.diagnostic == "" and row.subscriber_id is None
        assert (row.type, row.campaign_id) == (BounceType.SOFT, campaign_id)
        assert db.session.get(Campaign, campaign_id).bounced == 1


def test_the_language_is_exported_and_erased(app, person):
    anna_id, _, _ = person
    with app.app_context():
        db.session.get(Subscriber, anna_id).language = "nb"
        db.session.commit()
        assert gdpr.export_subscriber(anna_id)["subscriber"]["language"] == "nb"
        gdpr.erase_subscriber(anna_id)
        db.session.expire_all()
        assert db.session.get(Subscriber, anna_id).language is None
