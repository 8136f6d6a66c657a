"""Campaign rules: validation names the field, one state machine, and an exact snapshot."""
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, Subscriber, SubscriberStatus
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns, recipients
from newsletter.services.errors import ValidationError

GOOD = dict(name="News", subject="Hello {{ subscriber.name }}", from_email="news@example.com",
            html="<p>Hi {{ subscriber.name }}</p>")


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.mark.parametrize("change, field", [
    ({"subject": "Hi\r\nBcc: victim@example.com"}, "subject"),
    ({"from_name": "Evil\nX-Injected: 1"}, "from_name"),
    ({"from_email": "not an address"}, "from_email"),
    ({"reply_to": "a@b\r\nc"}, "reply_to"),
    ({"html": "{{ ''.__class__.__mro__ }}"}, "html"),
    ({"text": "{% for x in %}"}, "text"),
    ({"subject": ""}, "subject"),
    ({"html": "", "text": ""}, "html"),
    ({"list_ids": [10**6]}, "list_ids"),
    ({"layout_id": 10**6}, "layout_id"),
])
def test_bad_input_is_refused_naming_its_field_and_nothing_is_saved(ctx, change, field):
    with pytest.raises(ValidationError) as error:
        campaigns.create(**{**GOOD, **change})
    assert error.value.field == field
    assert db.session.scalar(select(Campaign.id)) is None


def test_status_moves_follow_the_state_machine(ctx):
    campaign = campaigns.create(**GOOD)
    with pytest.raises(ValidationError, match="list"):
        campaigns.send_now(campaign.id)  # no lists yet
    news = lists.create("News", "single")
    # A member, so that finishing takes a real send: the session's beat sweeper may act on
    # this campaign while it is `sending`, and each such window below is one statement long.
    subscribers.create("member@example.com", list_ids=[news.id])
    campaigns.update(campaign.id, list_ids=[news.id])
    with pytest.raises(ValidationError, match="future"):
        campaigns.schedule(campaign.id, datetime.now(UTC) - timedelta(minutes=1))
    paris = timezone(timedelta(hours=1))
    campaigns.schedule(campaign.id, datetime(2099, 1, 1, 9, 30, tzinfo=paris))
    assert campaigns.get(campaign.id).send_at.replace(tzinfo=UTC) == datetime(2099, 1, 1, 8, 30,
                                                                                      tzinfo=UTC)
    campaigns.unschedule(campaign.id)
    campaigns.send_now(campaign.id)
    campaigns.pause(campaign.id)
    with pytest.raises(ValidationError):
        campaigns.update(campaign.id, subject="changed after the send started")
    with pytest.raises(ValidationError):
        campaigns.send_now(campaign.id)  # paused -> sending is `resume`, not a new send
    campaigns.resume(campaign.id)
    campaigns.cancel(campaign.id)
    for move in (campaigns.resume, campaigns.pause, campaigns.send_now, campaigns.cancel):
        with pytest.raises(ValidationError):
            move(campaign.id)
    assert campaigns.get(campaign.id).status == CampaignStatus.CANCELLED
    assert campaigns.clone(campaign.id).status == CampaignStatus.DRAFT


def test_snapshot_sends_each_address_once_and_counts_who_is_left_out_and_why(ctx):
    a, b = lists.create("A", "single"), lists.create("B", "double")
    people = {
        "both@example.com": ("confirmed", [a.id, b.id]),
        "one@example.com": ("confirmed", [a.id]),
        "pending@example.com": ("unconfirmed", [a.id]),
        "left@example.com": ("confirmed", [b.id]),
        "blocked@example.com": ("confirmed", [a.id]),
    }
    for address, (status, list_ids) in people.items():
        subscribers.create(address, list_ids=list_ids, status=status)
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == "left@example.com"))
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    db.session.commit()
    subscribers.suppress_address("blocked@example.com", "asked by phone")
    campaign = campaigns.create(**GOOD, list_ids=[a.id, b.id])
    assert campaigns.estimate_recipients([a.id, b.id]) == 2
    # Snapshot a draft directly: the session's beat sweeper only acts on sending campaigns.

    assert recipients.snapshot(campaign.id) == 2
    assert recipients.snapshot(campaign.id) == 2  # safe to run twice
    sent_to = set(db.session.scalars(select(Delivery.email).where(Delivery.campaign_id == campaign.id)))
    assert sent_to == {"both@example.com", "one@example.com"}
    campaign = campaigns.get(campaign.id)
    assert (campaign.skipped_suppressed, campaign.skipped_unsubscribed, campaign.skipped_unconfirmed,
            campaign.duplicates) == (1, 1, 1, 1)


def _set_status(campaign_id: int, status: str) -> None:
    db.session.execute(Campaign.__table__.update().where(Campaign.id == campaign_id).values(status=status))
    db.session.commit()


def test_a_snapshot_in_chunks_freezes_the_same_recipients_and_finishes_only_at_the_end(ctx):
    from newsletter.services.campaigns import dispatch
    from newsletter.services.campaigns import send as campaign_send

    a = lists.create("Chunked", "single")
    for i in range(7):  # eligible ones with ineligible ones between them (unconfirmed)
        subscribers.create(f"c{i}@example.com", list_ids=[a.id], status="confirmed" if i % 3 else "unconfirmed")
    campaign = campaigns.create(**GOOD, list_ids=[a.id])
    assert recipients.snapshot_chunk(campaign.id, limit=2) is False
    frozen = set(db.session.scalars(select(Delivery.email).where(Delivery.campaign_id == campaign.id)))
    assert frozen == {"c1@example.com", "c2@example.com"}  # the first two eligible, by subscriber id
    db.session.execute(Delivery.__table__.update().where(Delivery.campaign_id == campaign.id).values(status="sent"))
    db.session.commit()
    assert campaigns.get(campaign.id).snapshot_at is None
    # Every frozen row is sent, but more recipients are coming: the campaign is not finished.
    # (Holding the snapshot lease keeps the session's beat sweeper from freezing the rest.)
    with campaign_send._snapshot_lease(campaign.id):
        _set_status(campaign.id, "sending")
        assert dispatch.finish_if_done(campaign.id) is False
        assert campaigns.get(campaign.id).status == CampaignStatus.SENDING
        _set_status(campaign.id, "draft")
    assert recipients.snapshot_chunk(campaign.id, limit=2) is True  # c4, c5 and nobody after them: done
    assert recipients.snapshot(campaign.id, chunk=2) == 4  # again: nothing new
    campaign = campaigns.get(campaign.id)
    assert campaign.snapshot_at is not None and campaign.recipients == 4
    assert campaign.skipped_unconfirmed == 3
    assert sorted(db.session.scalars(select(Delivery.email).where(Delivery.campaign_id == campaign.id))) == [
        "c1@example.com", "c2@example.com", "c4@example.com", "c5@example.com"]


def test_only_one_process_freezes_a_campaign_at_a_time(ctx):
    from newsletter.services.campaigns import send as campaign_send

    a = lists.create("Leased", "single")
    subscribers.create("lease@example.com", list_ids=[a.id], status="unconfirmed")  # nobody to send to
    campaign = campaigns.create(**GOOD, list_ids=[a.id])
    with campaign_send._snapshot_lease(campaign.id) as renew:
        assert renew is not None
        with campaign_send._snapshot_lease(campaign.id) as second:
            assert second is None
        _set_status(campaign.id, "sending")
        assert campaign_send.prepare(campaign.id) is True  # the lease is taken: it freezes nothing
        assert campaigns.get(campaign.id).snapshot_at is None
    assert campaign_send.prepare(campaign.id) is True
    assert campaigns.get(campaign.id).snapshot_at is not None
    _set_status(campaign.id, "cancelled")


def test_the_first_chunk_refreshes_stale_planner_statistics_once(ctx, monkeypatch):
    from newsletter.services.audience import statistics

    refreshed = []
    monkeypatch.setattr(statistics, "stale", lambda connection: True)
    monkeypatch.setattr(statistics, "refresh", refreshed.append)
    a = lists.create("Stats", "single")
    for i in range(2):
        subscribers.create(f"st{i}@example.com", list_ids=[a.id], status="confirmed")
    campaign = campaigns.create(**GOOD, list_ids=[a.id])
    assert recipients.snapshot_chunk(campaign.id, limit=1) is False
    assert recipients.snapshot_chunk(campaign.id, limit=1) is True
    assert len(refreshed) == 1  # before the first chunk only


def test_the_first_chunk_is_small_the_next_ones_full(ctx, monkeypatch):
    from flask import current_app

    a = lists.create("First chunk", "single")
    for i in range(5):
        subscribers.create(f"fc{i}@example.com", list_ids=[a.id], status="confirmed")
    campaign = campaigns.create(**GOOD, list_ids=[a.id])
    monkeypatch.setitem(current_app.config, "SEND_FIRST_WINDOW", 2)
    assert recipients.snapshot_chunk(campaign.id, limit=10) is False  # the first 2 only
    assert db.session.scalar(select(func.count()).select_from(Delivery)
                             .where(Delivery.campaign_id == campaign.id)) == 2
    assert recipients.snapshot_chunk(campaign.id, limit=10) is True  # then the other 3 at once
    assert campaigns.get(campaign.id).recipients == 5


def test_refreshing_statistics_counts_the_audience(ctx):
    from sqlalchemy import text

    from newsletter.services.audience import statistics

    if db.engine.dialect.name != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's (run with DATABASE_URL=postgresql://...)")
    for i in range(3):
        subscribers.create(f"count{i}@example.com")
    statistics.refresh(db.session.connection())
    db.session.commit()
    live = db.session.scalar(select(func.count()).select_from(Subscriber))
    assert db.session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'subscribers'")) == live
    assert statistics.stale(db.session.connection()) is False  # just analyzed


def test_list_id_quotes_or_encodes_the_lists_names(app):
    from newsletter.services.campaigns import send

    with app.app_context():
        assert send._list_id("Weekly, News", 7).startswith('"Weekly, News" <campaign-7.')
        # A plain name is quoted too (issue 18: mail clients show the phrase whole), quotes escaped.
        assert send._list_id("Weekly", 7).startswith('"Weekly" <campaign-7.')
        assert send._list_id('The "best" \\ list', 7).startswith('"The \\"best\\" \\\\ list" <campaign-7.')
        assert send._list_id("Ünïcode", 7).startswith("=?utf-8?")
        assert send._list_id("", 7).startswith("<campaign-7.") and send._list_id("", 7).endswith(">")
