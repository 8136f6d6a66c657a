"""Tracked messages, the request side, flushing and the report, against real Redis and the database."""
from __future__ import annotations

import email
import email.policy
import json
import re

from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignLink, EngagementEvent, EngagementUnique, Notification, Subscriber
from newsletter.services.audience import gdpr
from newsletter.services.campaigns import send
from newsletter.services.engagement import events, flush, stats, tokens

from .conftest import make_campaign

HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def message(campaign_id: int, subscriber_id: int, delivery_id: int | None = 1,
            test_send: bool = False) -> tuple[str, str]:
    """The HTML and text parts a recipient gets (built exactly as a batch builds them)."""
    entry = send.prepared(db.session.get(Campaign, campaign_id))
    person = db.session.get(Subscriber, subscriber_id)
    envelope = send.build_envelope(entry, delivery_id, person.id, person.email, person.name, {},
                                   inert_links=test_send)
    parsed = email.message_from_bytes(envelope.data, policy=email.policy.default)
    return (parsed.get_body(preferencelist=("html",)).get_content(),
            parsed.get_body(preferencelist=("plain",)).get_content())


def tracked(html: str) -> tuple[list[str], list[str]]:
    """(click tokens, pixel tokens) in a message's HTML."""
    return re.findall(r'/c/([A-Za-z0-9_-]+)"', html), re.findall(r'/o/([A-Za-z0-9_-]+)"', html)


def test_new_campaigns_take_the_default_mode_and_off_has_no_pixel(app, audience):
    list_id, people = audience
    with app.app_context():
        default = make_campaign(list_id, None)
        off = make_campaign(list_id, "off")
        assert db.session.get(Campaign, default).tracking.value == "anonymous"
        html, _ = message(off, people[0])
        assert tracked(html) == ([], [])
        assert 'href="https://shop.example.com/spring?a=1&amp;b=2"' in html
        assert db.session.scalar(select(func.count()).select_from(CampaignLink)) == 0


def test_tracked_message_rewrites_only_trackable_links(app, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        html, text = message(campaign_id, people[0])
        clicks, pixels = tracked(html)
        assert len(clicks) == 3 and len(pixels) == 1  # shop, blog twice (one link), and the pixel
        assert 'href="https://private.example.com/"' in html and "data-no-track" not in html
        assert 'href="mailto:help@example.com"' in html
        assert re.search(r'href="http://[^"]+/unsubscribe/', html) and "/preferences/" in html
        assert "https://shop.example.com/spring?a=1&b=2" in text and "/c/" not in text  # text stays untracked
        urls = db.session.scalars(select(CampaignLink.url).order_by(CampaignLink.id)).all()
        assert urls == ["https://shop.example.com/spring?a=1&b=2", "https://blog.example.com/post"]
        message(campaign_id, people[1])  # a second recipient registers nothing new
        assert db.session.scalar(select(func.count()).select_from(CampaignLink)) == 2


def test_test_sends_are_never_tracked(app, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "individual")
        html, _ = message(campaign_id, people[0], delivery_id=None, test_send=True)
        assert tracked(html) == ([], [])
        assert 'href="https://shop.example.com/spring?a=1&amp;b=2"' in html


def test_a_queued_campaign_test_carries_the_original_links_and_no_marker(app, audience):
    """Campaign tests go through the one-off path (a notification row): filled like a test send."""
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "individual")
        [notification_id] = send.queue_test(campaign_id, ["tester@example.com"], people[0])
        html = db.session.get(Notification, notification_id).html
        assert tracked(html) == ([], []) and "nl-track" not in html and "\x00" not in html
        assert 'href="https://shop.example.com/spring?a=1&amp;b=2"' in html


def test_anonymous_mode_stores_no_subscriber_id_anywhere(app, client, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        html, _ = message(campaign_id, people[0])
    clicks, pixels = tracked(html)
    with app.app_context():
        assert {tokens.load("click", t).subscriber_id for t in clicks} == {None}
        assert tokens.load("open", pixels[0]).subscriber_id is None
    assert client.get(f"/o/{pixels[0]}", headers={"User-Agent": HUMAN_UA}).status_code == 200
    assert client.get(f"/c/{clicks[0]}", headers={"User-Agent": HUMAN_UA}).status_code == 302
    with app.app_context():
        buffered = [json.loads(e) for e in events.client().lrange(events.key("events"), 0, -1)]
        assert [e[3] for e in buffered] == [0, 0]  # the subscriber slot is empty in Redis
        flush.run()
        assert db.session.scalar(select(func.count()).select_from(EngagementEvent)) == 0
        assert db.session.scalar(select(func.count()).select_from(EngagementUnique)) == 0
        report = stats.campaign_stats(campaign_id)
    assert report["tracking"] == "anonymous"
    assert report["opens"]["unique"] is None and report["clicks"]["unique"] is None
    assert report["opens"]["total"] + report["opens"]["machine"] == 1
    assert report["clicks"]["total"] + report["clicks"]["machine"] == 1


def test_individual_mode_counts_uniques_and_keeps_machine_apart(app, client, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "individual")
        mail = {p: message(campaign_id, p)[0] for p in people[:2]}
        for person, html in mail.items():  # each recipient's tokens name them
            assert {tokens.load("click", t).subscriber_id for t in tracked(html)[0]} == {person}
    for html in mail.values():
        clicks, pixels = tracked(html)
        for _ in range(3):  # the same person opening three times is one unique open
            client.get(f"/o/{pixels[0]}", headers={"User-Agent": HUMAN_UA})
        client.get(f"/c/{clicks[0]}", headers={"User-Agent": HUMAN_UA})
        client.get(f"/c/{clicks[0]}", headers={"User-Agent": HUMAN_UA})
    with app.app_context():
        flush.run()
        report = stats.campaign_stats(campaign_id)
        events_stored = db.session.scalar(select(func.count()).select_from(EngagementEvent))
    # Right after the build every hit is "too soon" for the placeholder rule: all machine, no uniques.
    assert report["opens"] == {"total": 0, "unique": 0, "machine": 6}
    assert report["clicks"] == {"total": 0, "unique": 0, "machine": 4}
    assert events_stored == 10
    shop = report["links"][0]
    assert shop == {"url": "https://shop.example.com/spring?a=1&b=2", "clicks": 0, "unique": 0, "machine": 4}


def test_individual_uniques_count_people_not_hits(app, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "individual")
        message(campaign_id, people[0])  # registers the links
        shop, blog = db.session.scalars(select(CampaignLink.id).order_by(CampaignLink.id)).all()
        at = 1_800_000_000
        batch = [["open", campaign_id, 0, people[0], 0, "", at], ["open", campaign_id, 0, people[0], 0, "", at],
                 ["open", campaign_id, 0, people[1], 0, "", at], ["open", campaign_id, 0, people[2], 1, "too_soon", at],
                 ["click", campaign_id, shop, people[0], 0, "", at], ["click", campaign_id, blog, people[0], 0, "", at],
                 ["click", campaign_id, shop, people[1], 0, "", at + 4000]]
        assert flush.apply("b1", batch[:4]) is True
        assert flush.apply("b2", batch[4:]) is True
        assert flush.apply("b2", batch[4:]) is False  # the same batch again: counted once
        flush.apply("b3", [["open", campaign_id, 0, people[0], 0, "", at + 10]])  # a later batch, same person
        report = stats.campaign_stats(campaign_id)
    assert report["opens"] == {"total": 4, "unique": 2, "machine": 1}
    assert report["clicks"] == {"total": 3, "unique": 2, "machine": 0}
    assert report["links"] == [
        {"url": "https://shop.example.com/spring?a=1&b=2", "clicks": 2, "unique": 2, "machine": 0},
        {"url": "https://blog.example.com/post", "clicks": 1, "unique": 1, "machine": 0}]


def test_export_holds_and_erasure_removes_a_subscribers_events(app, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "individual")
        message(campaign_id, people[0])
        shop = db.session.scalars(select(CampaignLink.id).order_by(CampaignLink.id)).first()
        flush.apply("e1", [["open", campaign_id, 0, people[0], 0, "", 1_800_000_000],
                           ["click", campaign_id, shop, people[0], 0, "", 1_800_000_100],
                           ["open", campaign_id, 0, people[1], 0, "", 1_800_000_000]])
        exported = gdpr.export_subscriber(people[0])["tracking_events"]
        assert [(e["kind"], e["url"]) for e in exported] == [
            ("open", None), ("click", "https://shop.example.com/spring?a=1&b=2")]
        gdpr.erase_subscriber(people[0])
        assert gdpr.export_subscriber(people[0])["tracking_events"] == []
        left = db.session.execute(select(EngagementEvent.subscriber_id)).scalars().all()
        assert left == [people[1]]
        assert db.session.scalar(select(func.count()).where(EngagementUnique.subscriber_id == people[0])) == 0
        # Later hits from links mailed before the erasure count, anonymously.
        flush.apply("e2", [["open", campaign_id, 0, people[0], 0, "", 1_800_000_200]])
        assert db.session.scalar(select(func.count()).where(EngagementEvent.subscriber_id == people[0])) == 0
        report = stats.campaign_stats(campaign_id)
    assert report["opens"]["total"] == 3  # aggregate counts are not personal data: they stay


def test_off_report_is_zeros_and_unknown_campaign_is_not_found(app, audience):
    import pytest

    from newsletter.services.errors import NotFound

    list_id, _ = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "off")
        assert stats.campaign_stats(campaign_id) == {
            "tracking": "off", "opens": {"total": 0, "unique": None, "machine": 0},
            "clicks": {"total": 0, "unique": None, "machine": 0}, "links": []}
        with pytest.raises(NotFound):
            stats.campaign_stats(campaign_id + 1000)


def test_events_of_a_deleted_campaign_are_dropped_not_stuck(app, audience):
    list_id, _ = audience
    with app.app_context():
        assert flush.apply("gone", [["open", 987654, 0, 0, 0, "", 1_800_000_000]]) is True
