"""Tracking end to end: a tracked campaign sent by the real worker, its pixel and a link fetched
from the message the SMTP server received, counted by beat's flush on the worker, read back from
GET /api/v1/campaigns/{id}/stats within 10 s."""
from __future__ import annotations

import email
import email.policy
import re
import time

from newsletter.models import Role
from newsletter.services.accounts import api_keys
from newsletter.services.webhooks import webhooks
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.services.test_webhooks import receiver  # noqa: F401  (the fixture: a real HTTP receiver)
from tests.support.net import wait_for

HTML = ('<html><body><p>Hello {{ subscriber.name }}</p><a href="https://shop.example.com/spring">Shop</a>'
        '<a href="https://blog.example.com/">Blog</a><a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>')
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _html(smtp_server, address: str) -> str:
    message = email.message_from_bytes(smtp_server.received[address][0], policy=email.policy.default)
    return message.get_body(("html",)).get_content()


def test_a_sent_tracked_campaigns_open_and_click_show_in_the_stats_within_10_s(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(5, prefix="eng")
    campaign_id = make_campaign([list_id], html=HTML, tracking="individual")
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    _, key = api_keys.create_api_key("e2e", Role("marketer"))
    headers = {"Authorization": f"Bearer {key}"}

    html = _html(smtp_server, emails[0])
    pixel = re.search(r'<img src="http://[^/"]+(/o/[A-Za-z0-9_-]+)"', html).group(1)
    clicks = re.findall(r'href="http://[^/"]+(/c/[A-Za-z0-9_-]+)"', html)
    assert len(clicks) == 2 and "/unsubscribe/" in html
    client = ctx.test_client()
    assert client.get(pixel, headers={"User-Agent": BROWSER}).status_code == 200
    went = client.get(clicks[1], headers={"User-Agent": BROWSER})
    assert (went.status_code, went.headers["Location"]) == (302, "https://blog.example.com/")
    hit_at = time.monotonic()

    def counted() -> dict | None:
        body = client.get(f"/api/v1/campaigns/{campaign_id}/stats", headers=headers).get_json()
        opens, link_clicks = body["opens"], {link["url"]: link for link in body["links"]}
        blog = link_clicks.get("https://blog.example.com/", {"clicks": 0, "machine": 0})
        seen = opens["total"] + opens["machine"] == 1 and blog["clicks"] + blog["machine"] == 1
        return body if seen else None

    wait_for(counted, 10, interval=0.2, message="the open and the click in the stats")
    assert time.monotonic() - hit_at < 10
    body = counted()
    assert body["tracking"] == "individual"
    assert set(link["url"] for link in body["links"]) == {"https://shop.example.com/spring", "https://blog.example.com/"}
    assert body["clicks"]["total"] + body["clicks"]["machine"] == 1


def test_an_open_and_a_click_reach_a_subscribed_webhook_once_each(ctx, worker, beat, smtp_server,
                                                                  receiver):  # noqa: F811  (the fixture)
    """The real worker sends, beat's flush on the worker writes the events to the outbox, the
    worker POSTs them: one email.opened and one email.clicked, nothing twice."""
    webhooks.create(receiver.url, "engagement", ["email.opened", "email.clicked"])
    list_id, emails = make_audience(3, prefix="whe")
    campaign_id = make_campaign([list_id], html=HTML, tracking="individual")
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    html = _html(smtp_server, emails[1])
    pixel = re.search(r'<img src="http://[^/"]+(/o/[A-Za-z0-9_-]+)"', html).group(1)
    click = re.findall(r'href="http://[^/"]+(/c/[A-Za-z0-9_-]+)"', html)[0]
    client = ctx.test_client()
    assert client.get(pixel, headers={"User-Agent": BROWSER}).status_code == 200
    assert client.get(click, headers={"User-Agent": BROWSER}).status_code == 302
    wait_for(lambda: len(receiver.bodies("email.opened")) + len(receiver.bodies("email.clicked")) >= 2, 20,
             interval=0.2, message="email.opened and email.clicked at the receiver")
    time.sleep(2)  # a negative check: room for a duplicate to show up
    [opened], [clicked] = receiver.bodies("email.opened"), receiver.bodies("email.clicked")
    assert (opened["data"]["campaign_id"], opened["data"]["email"]) == (campaign_id, emails[1])
    # Seconds after delivery: the classifier calls it a machine, and the payload says why.
    assert opened["data"]["machine"] is True and opened["data"]["reason"]
    assert (clicked["data"]["url"], clicked["data"]["email"]) == ("https://shop.example.com/spring", emails[1])
    assert {"subscriber_id", "reason", "occurred_at"} <= set(opened["data"])
