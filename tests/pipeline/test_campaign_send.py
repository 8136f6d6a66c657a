"""The send pipeline end to end: real worker, real broker, real SMTP server, real database."""
from __future__ import annotations

import email
import email.policy

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Campaign, Delivery
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    ledger,
    make_audience,
    make_campaign,
    resume,
    start,
    wait_until_status,
)


def test_500_recipients_each_get_exactly_one_personalised_valid_email(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(500)
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    assert smtp_server.duplicates() == {}
    assert sorted(smtp_server.received) == sorted(emails)
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.recipients, campaign.sent, campaign.failed) == (500, 500, 0)
    assert ledger(campaign_id) == {"sent": 500}

    raw = smtp_server.received["r00042@example.com"][0]
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == "News for Person 42"
    assert message["From"].addresses[0].display_name == "Ünïcode Sender"
    assert message.get_content_type() == "multipart/alternative"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "Hello Person 42 from City42" in html and 'style="color: #123456' in html
    assert "Hello Person 42 from City42" in text
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = message["List-Unsubscribe"]
    assert unsubscribe.startswith("<http") and "mailto:" in unsubscribe
    assert message["Message-ID"].endswith("@127.0.0.1>") or "@" in message["Message-ID"]
    delivery = db.session.scalar(select(Delivery).where(Delivery.email == "r00042@example.com"))
    assert message["X-Newsletter-Delivery"] == f"{campaign_id}.{delivery.id}"
    assert (delivery.attempts, delivery.smtp_code) == (1, 250)


def test_451_is_retried_and_delivered_550_fails_with_code_and_message(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(60, prefix="t")
    later, refused = set(emails[:10]), set(emails[10:15])

    def rule(rcpt: str, attempt: int) -> str | None:
        if rcpt in refused:
            return "550 5.1.1 No such user here"
        if rcpt in later and attempt == 1:
            return "451 4.3.0 Try again later"
        return None

    smtp_server.rule = rule
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")

    assert_exactly_once(smtp_server, [e for e in emails if e not in refused])
    assert all(e not in smtp_server.received for e in refused)
    rows = {d.email: d for d in db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id))}
    assert {(rows[e].status.value, rows[e].attempts, rows[e].smtp_code) for e in later} == {("sent", 2, 250)}
    assert {(rows[e].status.value, rows[e].attempts, rows[e].smtp_code) for e in refused} == {("failed", 1, 550)}
    assert all("No such user" in rows[e].smtp_message for e in refused)
    campaign = assert_totals_match_ledger(campaign_id)
    assert (campaign.sent, campaign.failed) == (55, 5)


def test_a_transient_failure_that_never_clears_fails_after_the_attempt_limit(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(3, prefix="x")
    smtp_server.rule = lambda rcpt, attempt: "452 4.2.2 Mailbox full" if rcpt == emails[0] else None
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    row = db.session.scalar(select(Delivery).where(Delivery.email == emails[0]))
    assert (row.status.value, row.attempts, row.smtp_code) == ("failed", 4, 452)  # SEND_MAX_ATTEMPTS=4 in tests
    assert smtp_server.attempts[emails[0]] == 4


def test_a_refused_login_pauses_the_campaign_with_the_reason(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(30, prefix="a")
    smtp_server.rule = lambda rcpt, attempt: "535 5.7.8 Authentication credentials invalid"
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "paused")
    campaign = db.session.get(Campaign, campaign_id)
    assert "refused our login" in campaign.status_reason and "535" in campaign.status_reason
    assert "failed" not in ledger(campaign_id)  # nobody's delivery is blamed for our credentials

    smtp_server.rule = lambda rcpt, attempt: None  # credentials fixed: resume sends the rest once
    resume(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    assert_exactly_once(smtp_server, emails)


def test_many_transient_failures_in_a_row_pause_the_campaign(ctx, worker, beat, smtp_server):
    list_id, emails = make_audience(80, prefix="e")
    smtp_server.rule = lambda rcpt, attempt: "451 4.3.0 Local problem"
    campaign_id = make_campaign([list_id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "paused")  # SEND_PAUSE_AFTER_ERRORS=30 in tests, across workers
    campaign = db.session.get(Campaign, campaign_id)
    assert "failed sends in a row" in campaign.status_reason and "451" in campaign.status_reason
    assert "failed" not in ledger(campaign_id)  # the first attempts are retries, not failures

    smtp_server.rule = lambda rcpt, attempt: None
    resume(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    assert_exactly_once(smtp_server, emails)


def test_internationalised_addresses_and_names_are_delivered(ctx, worker, beat, smtp_server):
    from newsletter.services.audience import lists, subscribers

    news = lists.create("Nouvelles", "single")
    people = {"chloé@example.org": "Chloé", "zoë@exämple.de": "Zoë Ünal", "plain@example.org": "Plain"}
    for address, name in people.items():
        subscribers.create(address, name=name, list_ids=[news.id])
    campaign_id = make_campaign([news.id])
    start(ctx, campaign_id)
    wait_until_status(campaign_id, "sent")
    assert_exactly_once(smtp_server, list(people))
    message = email.message_from_bytes(smtp_server.received["zoë@exämple.de"][0], policy=email.policy.default)
    assert message["Subject"] == "News for Zoë Ünal" and message["To"] == "zoë@exämple.de"


def test_send_batch_chords_complete_without_keeping_a_result_per_batch(app, worker):
    """The chord callback gets every batch's counts from the backend's join, and no
    per-batch result key stays behind (one would pile up at ~10 a second at full speed)."""
    from celery import chord, group

    celery = app.extensions["celery"]
    header = [celery.signature("newsletter.tasks.bulk.send_batch", args=(999_999_999, [])) for _ in range(3)]
    done = chord(group(header), app=celery)(celery.signature("newsletter.tasks.system.ping").set(immutable=True))
    assert done.get(timeout=60) == {"app": "newsletter", "env": "testing"}
    backend = celery.backend  # the Redis result backend, whichever URL form it was given
    assert len(done.parent.results) == 3
    assert not any(backend.client.exists(backend.get_key_for_task(task.id)) for task in done.parent.results)
    assert backend.client.exists(backend.get_key_for_task(done.id))  # while the callback's own is kept
