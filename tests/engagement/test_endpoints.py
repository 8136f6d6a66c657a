"""The pixel and the redirect: what they answer, and that a bad token never redirects."""
from __future__ import annotations

import json
import time

from newsletter.services.campaigns import campaigns
from newsletter.services.engagement import classify, events, links, tokens

from .conftest import make_campaign
from .test_engagement import message, tracked


def _buffered(app) -> int:
    with app.app_context():
        return events.client().llen(events.key("events"))


def test_pixel_is_a_43_byte_gif_never_cached(app, client, audience):
    list_id, people = audience
    with app.app_context():
        _, pixels = tracked(message(make_campaign(list_id, "anonymous"), people[0])[0])
    response = client.get(f"/o/{pixels[0]}")
    assert response.status_code == 200 and response.mimetype == "image/gif"
    assert len(response.data) == 43 and response.data.startswith(b"GIF89a")
    assert "no-store" in response.headers["Cache-Control"]
    assert _buffered(app) == 1


def test_click_redirects_to_the_registered_url(app, client, audience):
    list_id, people = audience
    with app.app_context():
        clicks, _ = tracked(message(make_campaign(list_id, "anonymous"), people[0])[0])
    response = client.get(f"/c/{clicks[0]}")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://shop.example.com/spring?a=1&b=2"
    assert "no-store" in response.headers["Cache-Control"]


def test_tampered_or_foreign_tokens_are_404_and_never_redirect(app, client, audience):
    list_id, people = audience
    with app.app_context():
        clicks, pixels = tracked(message(make_campaign(list_id, "anonymous"), people[0])[0])
        unknown_link = tokens.make("click", 1, 999_999, None, 1_800_000_000)  # signed, but no such link
    flipped = clicks[0][:-3] + ("A" if clicks[0][-3] != "A" else "B") + clicks[0][-2:]
    for bad in (flipped, clicks[0][:-1], pixels[0], "not-a-token", "x" * 200, unknown_link,
                "https%3A%2F%2Fevil.example%2F"):
        response = client.get(f"/c/{bad}")
        assert response.status_code == 404, bad
        assert "Location" not in response.headers
    assert client.get(f"/o/{clicks[0]}").status_code == 404  # a click token is no pixel
    assert client.get(f"/o/{pixels[0][:-2]}").status_code == 404
    assert _buffered(app) == 0  # nothing counted for any of them


def test_a_deleted_campaigns_links_no_longer_redirect(app, client, audience):
    list_id, people = audience
    with app.app_context():
        campaign_id = make_campaign(list_id, "anonymous")
        html, _ = message(campaign_id, people[1])
        campaigns.delete(campaign_id)
    clicks, _ = tracked(html)
    # A process that already followed the link keeps it in its cache (ids are reused between
    # tests on SQLite): start from an empty one, as a newly started web process would.
    links._urls.clear()
    assert client.get(f"/c/{clicks[1]}").status_code == 404


def _burst_links(token: tokens.Token, user_agent: str, ip: str) -> int:
    """The distinct links the hit's script counted for this client (the hit is buffered too)."""
    hit = classify.Hit("click", user_agent, ip, time.time(), token.built_at, 1, "text/html")
    return events._push(token, hit, burst=events._burst_key(token, user_agent, ip))


def test_burst_counts_distinct_links_per_client_within_the_window(app):
    with app.app_context():
        first, second = (tokens.Token(7, link, None, 1_800_000_000) for link in (1, 2))
        assert _burst_links(first, "UA", "10.0.0.1") == 1
        assert _burst_links(first, "UA", "10.0.0.1") == 1  # the same link again
        assert _burst_links(second, "UA", "10.0.0.1") == 2
        assert _burst_links(second, "UA", "10.0.0.2") == 1  # another client
        key = next(events.client().scan_iter(match=events.key("burst:7:*")))
        assert 0 < events.client().ttl(key) <= 11 and b"10.0.0" not in key  # hashed, and gone soon


def test_a_head_request_answers_but_counts_as_a_machine(app, client, audience):
    """Link checkers send HEAD; a reader's mail client never does."""
    list_id, people = audience
    with app.app_context():
        clicks, pixels = tracked(message(make_campaign(list_id, "anonymous"), people[0])[0])
    browser = {"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                             "(KHTML, like Gecko) Version/17.0 Safari/605.1.15", "Accept": "text/html,*/*"}
    assert client.head(f"/c/{clicks[0]}", headers=browser).status_code == 302
    assert client.head(f"/o/{pixels[0]}", headers=browser).status_code == 200
    with app.app_context():
        buffered = [json.loads(e) for e in events.client().lrange(events.key("events"), 0, -1)]
    assert [(e[0], e[4], e[5]) for e in buffered] == [("click", 1, "bot"), ("open", 1, "bot")]
