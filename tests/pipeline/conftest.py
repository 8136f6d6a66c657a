"""Helpers for send-pipeline tests: audiences, campaigns, and waiting for the ledger."""
from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from newsletter.extensions import db
from newsletter.models import (
    Campaign,
    MailingList,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
)
from newsletter.models.base import utcnow
from newsletter.services.campaigns import campaigns
from newsletter.services.delivery import ledger as deliveries
from tests.support.net import wait_for

HTML = ('<style>p { color: #123456 }</style><p>Hello {{ subscriber.name }} from {{ subscriber.attributes.city }}</p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')


def make_audience(n: int, prefix: str = "r") -> tuple[int, list[str]]:
    """One list with `n` confirmed members, inserted in bulk; returns (list id, addresses)."""
    mailing_list = MailingList(name=f"List {prefix}", opt_in=OptIn.SINGLE)
    db.session.add(mailing_list)
    db.session.flush()
    now = utcnow()
    emails = [f"{prefix}{i:05d}@example.com" for i in range(n)]
    db.session.execute(insert(Subscriber), [
        {"email": e, "name": f"Person {i}", "attributes": {"city": f"City{i}"}, "status": SubscriberStatus.CONFIRMED,
         "created_at": now, "updated_at": now, "confirmed_at": now} for i, e in enumerate(emails)])
    ids = db.session.scalars(select(Subscriber.id).where(Subscriber.email.in_(emails))).all()
    db.session.execute(insert(Subscription), [
        {"subscriber_id": i, "list_id": mailing_list.id, "status": SubscriptionStatus.CONFIRMED,
         "created_at": now, "updated_at": now} for i in ids])
    db.session.commit()
    return mailing_list.id, emails


def make_campaign(list_ids: list[int], **overrides) -> int:
    values = dict(name="Spring news", subject="News for {{ subscriber.name }}", from_name="Ünïcode Sender",
                  from_email="news@example.com", html=HTML, list_ids=list_ids)
    values.update(overrides)
    return campaigns.create(**values).id


def start(app, campaign_id: int) -> None:
    campaigns.send_now(campaign_id)
    app.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])


def start_sending(app, n: int, prefix: str, smtp_server=None, first_sends: int = 0) -> tuple[int, list[str]]:
    """A list of `n` members, a campaign to it, sent; optionally wait for its first sends."""
    list_id, emails = make_audience(n, prefix=prefix)
    campaign_id = make_campaign([list_id])
    start(app, campaign_id)
    if first_sends:
        wait_for(lambda: smtp_server.count() >= first_sends, 30, message="the first sends")
    return campaign_id, emails


def status_of(campaign_id: int) -> str:
    db.session.rollback()
    return db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)).value


def wait_until_status(campaign_id: int, status: str, timeout: float = 90) -> None:
    wait_for(lambda: status_of(campaign_id) == status, timeout, interval=0.25,
             message=lambda: f"campaign {campaign_id} to be {status} (it is {status_of(campaign_id)}; "
                             f"ledger: {ledger(campaign_id)})")


def ledger(campaign_id: int) -> dict[str, int]:
    db.session.rollback()
    return {k: v for k, v in deliveries.counts(campaign_id).items() if v}


def assert_totals_match_ledger(campaign_id: int) -> Campaign:
    db.session.rollback()
    campaign = db.session.get(Campaign, campaign_id)
    counts = deliveries.counts(campaign_id)
    assert (campaign.recipients, campaign.sent, campaign.failed, campaign.cancelled) == (
        sum(counts.values()), counts["sent"], counts["failed"], counts["cancelled"])
    assert campaign.totals_at is not None
    return campaign


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app



def received_for(smtp_server, emails: list[str]) -> dict[str, int]:
    return {e: len(smtp_server.received.get(e, [])) for e in emails}


def assert_exactly_once(smtp_server, emails: list[str]) -> None:
    counts = received_for(smtp_server, emails)
    missing = [e for e, n in counts.items() if n == 0]
    twice = {e: n for e, n in counts.items() if n > 1}
    assert (missing[:5], len(missing), twice) == ([], 0, {})


def resume(app, campaign_id: int) -> None:
    campaigns.resume(campaign_id)
    app.extensions["celery"].send_task("newsletter.tasks.campaigns.dispatch_campaign", args=[campaign_id])
