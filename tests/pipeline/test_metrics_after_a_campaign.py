"""Counters written by real Celery pool processes, read back through the web's /metrics."""
from __future__ import annotations

import pytest

from newsletter.extensions import db
from newsletter.models import Role
from newsletter.services.accounts import api_keys
from newsletter.services.notifications import notifications
from tests.api.conftest import ApiClient
from tests.pipeline.conftest import make_audience, make_campaign, start, wait_until_status
from tests.support.metrics import groups, parse, scrape, value
from tests.support.net import wait_for


@pytest.fixture
def fresh(app):
    saved = app.config["METRICS_CACHE_SECONDS"]
    app.config["METRICS_CACHE_SECONDS"] = 0
    yield app
    app.config["METRICS_CACHE_SECONDS"] = saved


def test_a_campaign_moves_the_counters_by_exactly_what_was_sent(ctx, fresh, worker, beat, smtp_server):
    client = fresh.test_client()
    list_id, emails = make_audience(60, prefix="m")
    later, refused = set(emails[:5]), set(emails[5:10])

    def rule(rcpt: str, attempt: int) -> str | None:
        if rcpt in refused:
            return "550 5.1.1 No such user here"
        if rcpt in later and attempt == 1:
            return "451 4.3.0 Try again later"
        return None

    smtp_server.rule = rule
    before = parse(scrape(client))
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    text = scrape(client)
    after, by_group = parse(text), parse(text, by_group=True)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("newsletter_messages_total", lane="campaign", outcome="sent", reply="2xx") == 55
    assert moved("newsletter_messages_total", lane="campaign", outcome="failed", reply="5xx") == 5
    assert moved("newsletter_messages_total", lane="campaign", outcome="retried", reply="4xx") == 5
    # The sends were counted by the bulk worker's pool processes, in that worker's own folder.
    counted = groups(by_group, "newsletter_messages_total", lane="campaign", outcome="sent", reply="2xx")
    assert any(group.startswith("worker-bulk") and n >= 55 for group, n in counted.items()), counted
    # One observation per SMTP round: at least one, at most one per attempt (65).
    rounds = moved("newsletter_smtp_round_seconds_count", lane="campaign")
    assert 1 <= rounds <= 65, rounds
    assert moved("newsletter_smtp_round_seconds_sum", lane="campaign") > 0
    assert moved("newsletter_smtp_round_seconds_bucket", lane="campaign", le="+Inf") == rounds
    # The ledger gauge is read from the database at scrape time.
    assert value(after, "newsletter_ledger_rows", ledger="deliveries", state="sent") == 55
    assert value(after, "newsletter_ledger_rows", ledger="deliveries", state="failed") == 5
    assert value(after, "newsletter_ledger_rows", ledger="deliveries", state="pending") == 0
    assert value(after, "newsletter_campaigns", status="sent") == 1
    assert value(after, "newsletter_recent_campaign_totals", total="sent") == 55


def test_notifications_count_in_their_own_lane(ctx, fresh, client, worker, transactional_worker, beat, smtp_server):
    smtp_server.rule = lambda rcpt, attempt: "550 5.1.1 No such user here" if rcpt.startswith("nobody") else None
    api = ApiClient(client, api_keys.create_api_key("metrics", Role.MARKETER)[1])
    before = parse(scrape(client))
    for to in ("one@example.com", "two@example.com", "nobody@example.com"):
        accepted = api.post("/api/v1/notifications", json={"to": to, "subject": "Hi", "text": "Hello"})
        assert accepted.status_code == 202, accepted.get_json()
    def statuses() -> list[str]:
        db.session.rollback()  # a fresh read each time
        return sorted(n.status.value for n in notifications.recent(10))

    wait_for(lambda: statuses() == ["failed", "sent", "sent"], 30, 0.1, "two notifications sent, one failed")
    after = parse(scrape(client))

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("newsletter_messages_total", lane="notification", outcome="sent", reply="2xx") == 2
    assert moved("newsletter_messages_total", lane="notification", outcome="failed", reply="5xx") == 1
    assert moved("newsletter_messages_total", lane="campaign", outcome="sent", reply="2xx") == 0
    assert moved("newsletter_smtp_round_seconds_count", lane="notification") == 3
