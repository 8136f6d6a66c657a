"""Resend to non-openers / non-clickers: who the snapshot keeps, and when it is refused."""
from __future__ import annotations

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, ResendTo, Subscriber, SubscriberStatus
from newsletter.services.audience import lists, subscribers
from newsletter.services.campaigns import campaigns, recipients, resend
from newsletter.services.engagement import flush
from newsletter.services.errors import StateConflict, ValidationError

from .conftest import make_campaign, sent_campaign

AT = 1_800_000_000


def frozen(campaign_id: int) -> set[str]:
    recipients.snapshot(campaign_id)
    return set(db.session.scalars(select(Delivery.email).where(Delivery.campaign_id == campaign_id)))


@pytest.fixture
def crowd(app):
    """Eight confirmed members of one list; returns (list id, {name: subscriber id})."""
    with app.app_context():
        news = lists.create("Crowd", "single")
        names = ["human_open", "machine_open", "human_click", "unsubscribed", "failed", "silent", "bounced",
                 "suppressed"]
        return news.id, {n: subscribers.create(f"{n}@example.com", list_ids=[news.id]).id for n in names}


def test_the_resend_snapshot_keeps_only_recipients_without_a_human_open(app, crowd):
    list_id, who = crowd
    with app.app_context():
        original = sent_campaign(list_id, "individual", failed=(who["failed"],))
        flush.apply("r-1", [["open", original, 0, who["human_open"], 0, "", AT],
                            ["open", original, 0, who["machine_open"], 1, "apple_mpp", AT],
                            ["click", original, 0, who["machine_open"], 1, "scanner_ua", AT],
                            ["click", original, 0, who["human_click"], 0, "", AT]])
        late = subscribers.create("late@example.com", list_ids=[list_id]).id  # joined after the send
        openers = resend.create(original, "non_openers", subject="Did you miss this?")
        clickers = resend.create(original, "non_clickers")
        assert (openers.subject, openers.status, openers.resend_of_id, openers.resend_to) == (
            "Did you miss this?", CampaignStatus.DRAFT, original, ResendTo.NON_OPENERS)
        assert clickers.subject == "Hello" and [ml.id for ml in clickers.lists] == [list_id]
        subscribers.bulk_unsubscribe(ids=[who["unsubscribed"]])
        db.session.execute(update(Subscriber).where(Subscriber.id == who["bounced"]).values(
            status=SubscriberStatus.BOUNCED))
        db.session.commit()
        subscribers.suppress_address("suppressed@example.com")
        assert resend.reach(original) == {ResendTo.NON_OPENERS: 2, ResendTo.NON_CLICKERS: 3}
        assert resend.recipients_now(openers.id) == 2

        # Machine-only opens do not count; a human click counts as an open; failed, late, unsubscribed,
        # bounced and suppressed addresses are left out.
        assert frozen(openers.id) == {"machine_open@example.com", "silent@example.com"}
        assert frozen(clickers.id) == {"human_open@example.com", "machine_open@example.com", "silent@example.com"}
        assert late not in set(db.session.scalars(select(Delivery.subscriber_id)))


def test_an_open_counted_after_the_draft_but_before_the_send_drops_its_reader(app, crowd):
    list_id, who = crowd
    with app.app_context():
        original = sent_campaign(list_id, "individual")
        draft = resend.create(original, "non_openers")
        assert resend.recipients_now(draft.id) == 8
        flush.apply("r-2", [["open", original, 0, who["silent"], 0, "", AT]])
        assert "silent@example.com" not in frozen(draft.id)
        assert len(frozen(draft.id)) == 7


@pytest.mark.parametrize("tracking, words", [("anonymous", "tracked anonymously"), ("off", "without tracking")])
def test_only_individually_tracked_sent_campaigns_can_be_resent(app, crowd, tracking, words):
    list_id, _ = crowd
    with app.app_context():
        original = sent_campaign(list_id, tracking)
        with pytest.raises(StateConflict, match=words) as refused:
            resend.create(original, "non_openers")
        assert refused.value.field == "tracking"
        draft = make_campaign(list_id, "individual")
        with pytest.raises(StateConflict, match="Only a sent campaign") as refused:
            resend.create(draft, "non_openers")
        assert refused.value.field == "status"
        with pytest.raises(ValidationError) as bad:
            resend.create(sent_campaign(list_id, "individual"), "everyone")
        assert bad.value.field == "to"
        assert db.session.scalar(select(Campaign.id).where(Campaign.resend_to.is_not(None))) is None


def test_a_resend_whose_original_was_deleted_goes_to_nobody_and_cannot_be_sent(app, crowd):
    list_id, _ = crowd
    with app.app_context():
        original = sent_campaign(list_id, "individual")
        draft = resend.create(original, "non_openers")
        campaigns.delete(original)
        db.session.expire_all()
        assert (draft.resend_of_id, draft.resend_to) == (None, ResendTo.NON_OPENERS)
        assert resend.recipients_now(draft.id) == 0
        with pytest.raises(StateConflict, match="was deleted"):
            campaigns.send_now(draft.id)
