"""An A/B test end to end on the real worker and SMTP server: the test share gets the variants,
human opens of one variant come in through the tracking endpoint, beat's task (called here)
picks it, the rest get the winner; every recipient once, and the ledger says who got what."""
from __future__ import annotations

import email
import email.policy
import re
import time
from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import AuditEvent, Campaign, Delivery, Role
from newsletter.services.accounts import api_keys
from newsletter.services.engagement import flush
from newsletter.tasks.campaigns import decide_ab_tests
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    start,
    status_of,
    wait_until_status,
)
from tests.support.net import wait_for

HTML = '<p>Hello {{ subscriber.name }}</p><a href="https://shop.example.com/">Shop</a>' \
       '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
AB = {"variants": [{"subject": "Spring sale A"}, {"subject": "Spring sale B", "from_name": "Bea at the shop"}],
      "share": 50, "metric": "opens", "wait_minutes": 60, "mode": "auto"}


def _message(smtp_server, address: str):
    [raw] = smtp_server.received[address]
    return email.message_from_bytes(raw, policy=email.policy.default)


def _rows(campaign_id: int) -> dict[str, tuple[str | None, bool | None, str]]:
    db.session.rollback()
    return {row.email: (row.variant, row.ab_tested, row.status.value) for row in db.session.scalars(
        select(Delivery).where(Delivery.campaign_id == campaign_id))}


def test_the_test_share_gets_the_variants_and_the_rest_gets_the_winner_exactly_once(ctx, worker, smtp_server):
    list_id, emails = make_audience(40, prefix="ab")
    campaign_id = make_campaign([list_id], html=HTML, tracking="individual", ab_test=AB)
    start(ctx, campaign_id)

    # The test share goes out (20 of 40, 10 per variant); the rest waits, held, with the campaign sending.
    wait_for(lambda: ledger(campaign_id).get("sent") == 20, 60, interval=0.25, message="the test share sent")
    time.sleep(1)  # a negative check: nothing beyond the test share goes out while the winner is unknown
    rows = _rows(campaign_id)
    assert ledger(campaign_id) == {"sent": 20, "pending": 20} and status_of(campaign_id) == "sending"
    tested = {e: v for e, (v, in_test, _) in rows.items() if in_test}
    assert Counter(tested.values()) == {"A": 10, "B": 10}
    assert all(v is None for e, (v, in_test, _) in rows.items() if not in_test)
    assert sorted(smtp_server.received) == sorted(tested)
    for address, label in tested.items():
        message = _message(smtp_server, address)
        assert message["Subject"] == f"Spring sale {label}"
        assert ("Bea at the shop" in message["From"]) == (label == "B")

    # Three B readers and one A reader open it, through the real pixel endpoint, as people do
    # (a browser, seconds after delivery: sooner would be a machine's prefetch).
    readers = [e for e, v in sorted(tested.items()) if v == "B"][:3] + [e for e, v in sorted(tested.items())
                                                                        if v == "A"][:1]
    time.sleep(2.5)
    client = ctx.test_client()
    for address in readers:
        html = _message(smtp_server, address).get_body(("html",)).get_content()
        pixel = re.search(r'<img src="http://[^/"]+(/o/[A-Za-z0-9_-]+)"', html).group(1)
        assert client.get(pixel, headers={"User-Agent": BROWSER}).status_code == 200
    _, key = api_keys.create_api_key("ab", Role("marketer"))
    headers = {"Authorization": f"Bearer {key}"}

    def counted():
        flush.run()
        body = client.get(f"/api/v1/campaigns/{campaign_id}/ab", headers=headers).get_json()
        return body if [v["opens"] for v in body["variants"]] == [1, 3] else None

    report = wait_for(counted, 20, interval=0.3, message="the opens counted per variant")
    assert [(v["label"], v["sent"], v["leader"]) for v in report["variants"]] == [("A", 10, False), ("B", 10, True)]
    assert report["winner"] is None and report["held"] == 20
    assert report["variants"][0]["summary"].startswith("B beats A with ")

    # The wait is over (moved back rather than waited for): beat's task picks B and releases the rest.
    snapshot_at = db.session.scalar(select(Campaign.snapshot_at).where(Campaign.id == campaign_id))
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
        snapshot_at=snapshot_at - timedelta(minutes=61)))
    db.session.commit()
    picked = decide_ab_tests()
    assert picked in ({str(campaign_id): "B"}, {})  # {}: a session's beat, if one runs, took it first
    assert decide_ab_tests() == {}  # a second tick: nothing left to decide
    wait_until_status(campaign_id, "sent")

    assert_exactly_once(smtp_server, emails)
    rows = _rows(campaign_id)
    assert {status for _, _, status in rows.values()} == {"sent"}
    assert Counter((v, bool(t)) for v, t, _ in rows.values()) == {("A", True): 10, ("B", True): 10, ("B", False): 20}
    for address, (_, in_test, _) in rows.items():
        if not in_test:
            assert _message(smtp_server, address)["Subject"] == "Spring sale B"
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.ab_winner, campaign.sent) == ("B", 40)
    [event] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.ab_winner",
                                                           AuditEvent.target_id == str(campaign_id)))
    assert (event.details["variant"], event.details["released"], event.details["automatic"]) == ("B", 20, True)
