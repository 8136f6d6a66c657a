"""Helpers for engagement tests: a tracked campaign, and a clean Redis buffer for each test."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns, recipients
from newsletter.services.campaigns.totals import record_totals
from newsletter.services.engagement import events, links

HTML = ('<html><body><p>Hi {{ subscriber.name }}</p>'
        '<a href="https://shop.example.com/spring?a=1&amp;b=2">Shop</a>'
        '<a href="https://blog.example.com/post" class="x">Blog</a>'
        '<a href="https://blog.example.com/post">Blog again</a>'
        '<a data-no-track href="https://private.example.com/">Private</a>'
        '<a href="mailto:help@example.com">Mail us</a>'
        '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        '<a href="{{ preferences_url }}">Preferences</a>'
        '</body></html>')


@pytest.fixture(autouse=True)
def _own_buffer(app):
    """Each test buffers and flushes under its own Redis keys: the session's worker flushes the
    default ones every few seconds and must not take (or count) this test's events."""
    app.config["ENGAGEMENT_KEY_PREFIX"] = f"test-engagement-{uuid.uuid4().hex[:8]}"
    yield
    with app.app_context():
        client = events.client()
        keys = list(client.scan_iter(match=app.config["ENGAGEMENT_KEY_PREFIX"] + ":*"))
        if keys:
            client.delete(*keys)
    app.config.pop("ENGAGEMENT_KEY_PREFIX")
    # The redirect's per-process link cache is keyed by ids, which SQLite hands out again once
    # the tables are emptied: a later test's link 1 must not go where this test's went.
    links._urls.clear()


@pytest.fixture
def audience(app):
    """A list with three confirmed subscribers; returns (list id, [subscriber ids])."""
    with app.app_context():
        news = lists.create("Engaged", "single")
        ids = [subscribers.create(f"p{i}@example.com", name=f"P{i}", list_ids=[news.id]).id for i in range(3)]
        return news.id, ids


def make_campaign(list_id: int, tracking: str | None, html: str = HTML) -> int:
    values = dict(name="Tracked", subject="Hello", from_email="news@example.com", html=html, list_ids=[list_id])
    if tracking is not None:
        values["tracking"] = tracking
    return campaigns.create(**values).id


def sent_campaign(list_id: int, tracking: str, failed: tuple[int, ...] = ()) -> int:
    """A campaign whose snapshot ran and whose deliveries are final (sent, or failed for `failed`)."""
    campaign_id = make_campaign(list_id, tracking)
    recipients.snapshot(campaign_id)
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id).values(status=DeliveryStatus.SENT))
    if failed:
        db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id,
                                                  Delivery.subscriber_id.in_(failed)).values(status=DeliveryStatus.FAILED))
    record_totals(campaign_id)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=CampaignStatus.SENT))
    db.session.commit()
    return campaign_id
