"""email.opened / email.clicked: written by the flush into the webhook outbox, once per counted
event, in the batch's transaction; nothing when no endpoint listens."""
from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import CampaignLink, WebhookDelivery
from newsletter.services.engagement import events, flush
from newsletter.services.webhooks import webhooks

from .conftest import make_campaign
from .test_flush_crash import _crashing_flush

AT = 1_800_000_000
NOWHERE = "http://127.0.0.1:9/hook"  # never answers: these tests read the outbox, not a receiver


def outbox(event: str | None = None) -> list[dict]:
    db.session.rollback()
    query = select(WebhookDelivery.payload).order_by(WebhookDelivery.id)
    if event:
        query = query.where(WebhookDelivery.event == event)
    return [json.loads(payload) for payload in db.session.scalars(query)]


def _link(campaign_id: int, url: str) -> int:
    link = CampaignLink(campaign_id=campaign_id, url=url)
    db.session.add(link)
    db.session.commit()
    return link.id


def test_each_counted_event_is_one_webhook_with_the_subscriber_only_in_individual_mode(app, audience):
    list_id, people = audience
    with app.app_context():
        webhooks.create(NOWHERE, "engagement", ["email.opened", "email.clicked"])
        named, anonymous = make_campaign(list_id, "individual"), make_campaign(list_id, "anonymous")
        link = _link(named, "https://shop.example.com/spring")
        flush.apply("wh-1", [["open", named, 0, people[0], 0, "", AT],
                             ["open", named, 0, people[0], 1, "apple_mpp", AT + 1],
                             ["click", named, link, people[1], 0, "", AT + 2],
                             ["open", anonymous, 0, 0, 0, "", AT + 3]])
        opened, clicked = outbox("email.opened"), outbox("email.clicked")
    assert [o["data"] for o in opened] == [
        {"campaign_id": named, "machine": False, "reason": "", "occurred_at": "2027-01-15T08:00:00+00:00",
         "subscriber_id": people[0], "email": "p0@example.com"},
        {"campaign_id": named, "machine": True, "reason": "apple_mpp", "occurred_at": "2027-01-15T08:00:01+00:00",
         "subscriber_id": people[0], "email": "p0@example.com"},
        {"campaign_id": anonymous, "machine": False, "reason": "", "occurred_at": "2027-01-15T08:00:03+00:00"}]
    assert [c["data"] for c in clicked] == [
        {"campaign_id": named, "machine": False, "reason": "", "occurred_at": "2027-01-15T08:00:02+00:00",
         "link_id": link, "url": "https://shop.example.com/spring", "subscriber_id": people[1],
         "email": "p1@example.com"}]
    assert {o["event"] for o in opened} == {"email.opened"} and len({o["id"] for o in opened + clicked}) == 4


def test_nothing_is_written_when_no_endpoint_subscribes(app, audience):
    list_id, people = audience
    with app.app_context():
        webhooks.create(NOWHERE, "deliveries only", ["delivery.sent"])
        webhooks.create(NOWHERE, "switched off", ["email.opened"], active=False)
        campaign_id = make_campaign(list_id, "individual")
        assert flush.apply("wh-2", [["open", campaign_id, 0, people[0], 0, "", AT]])
        assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
        only_clicks = webhooks.create(NOWHERE, "clicks", ["email.clicked"])
        flush.apply("wh-3", [["open", campaign_id, 0, people[0], 0, "", AT]])
        assert outbox() == [] and only_clicks.id


def test_a_batch_counted_again_emits_nothing_again(app, audience):
    list_id, people = audience
    with app.app_context():
        webhooks.create(NOWHERE, "opens", ["email.opened"])
        campaign_id = make_campaign(list_id, "anonymous")
        batch = [["open", campaign_id, 0, 0, 0, "", AT]] * 3
        assert flush.apply("wh-4", batch) is True
        assert flush.apply("wh-4", batch) is False
        assert len(outbox("email.opened")) == 3


N = 1200  # more than one outbox UPDATE chunk (1,000 ids)


@pytest.mark.parametrize("point", ["after_take", "after_commit"])
def test_a_flusher_killed_mid_flush_emits_each_event_exactly_once(app, audience, point):
    list_id, _ = audience
    with app.app_context():
        webhooks.create(NOWHERE, "opens", ["email.opened"])
        campaign_id = make_campaign(list_id, "anonymous")
        client = events.client()
        client.rpush(events.key("events"), *[json.dumps(["open", campaign_id, 0, 0, i % 2, "", AT + i])
                                          for i in range(N)])
    crashed = _crashing_flush(point, app.config["ENGAGEMENT_KEY_PREFIX"])
    assert crashed.returncode == 70, crashed.stderr
    with app.app_context():
        assert len(outbox()) == (N if point == "after_commit" else 0)
        time.sleep(3.2)  # the dead flusher's lease runs out; the next run takes its batch over
        flush.run()
        flush.run()
        sent = outbox("email.opened")
    assert sorted(o["data"]["occurred_at"] for o in sent) == sorted({o["data"]["occurred_at"] for o in sent})
    assert len(sent) == N and sum(o["data"]["machine"] for o in sent) == N // 2
