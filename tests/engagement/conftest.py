"""Helpers for engagement tests: a tracked campaign, and a clean Redis buffer for each test."""
from __future__ import annotations

import pytest

from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns
from newsletter.services.engagement import events, flush

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
def _empty_buffer(app):
    """Events a previous test left in Redis must not count for a campaign that reuses an id."""
    with app.app_context():
        client = events.client()
        keys = [k for k in client.scan_iter(match="newsletter:engagement:*")]
        if keys:
            client.delete(*keys)
    yield


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
