"""A/B tests in the services: the split (sizes, reproducible, each recipient once), the held rest,
the winner logic (by human engagement per variant, once), and what is refused."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.models.base import utcnow
from newsletter.services.campaigns import ab_tests, ab_variants, campaigns, recipients, resend
from newsletter.services.delivery import ledger
from newsletter.services.engagement import flush
from newsletter.services.errors import StateConflict, ValidationError
from tests.pipeline.conftest import make_audience, make_campaign

AT = 1_800_000_000
THREE = {"variants": [{"subject": "One"}, {"subject": "Two"}, {"subject": "Three"}], "share": 30,
         "metric": "clicks", "wait_minutes": 30, "mode": "auto"}


def _ab_campaign(n: int, ab: dict, prefix: str = "s") -> int:
    list_id, _ = make_audience(n, prefix=prefix)
    return make_campaign([list_id], tracking="individual", ab_test=ab)


def _ledger(campaign_id: int) -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)))


def test_the_split_is_reproducible_even_and_takes_each_row_once():
    rows = [(i, 1000 + i) for i in range(1, 1001)]
    dealt = ab_variants.split(7, rows, 20, ("A", "B", "C"))
    assert [len(ids) for ids in dealt.values()] == [67, 67, 66]  # 200 in all, sizes differ by at most one
    chosen = [i for ids in dealt.values() for i in ids]
    assert len(chosen) == len(set(chosen)) == 200
    assert ab_variants.split(7, list(reversed(rows)), 20, ("A", "B", "C")) == dealt  # order of reading: no matter
    other = ab_variants.split(8, rows, 20, ("A", "B", "C"))
    assert set(chosen) != {i for ids in other.values() for i in ids}  # another campaign, another sample
    tiny = ab_variants.split(7, rows[:5], 10, ("A", "B", "C", "D"))  # 10% of 5: still one per variant
    assert [len(ids) for ids in tiny.values()] == [1, 1, 1, 1]


def test_the_snapshot_releases_the_test_share_and_holds_the_rest(app):
    with app.app_context():
        campaign_id = _ab_campaign(101, THREE)
        assert recipients.snapshot(campaign_id) == 101
        recipients.snapshot(campaign_id)  # again: nothing more is frozen or released
        rows = _ledger(campaign_id)
        assert len(rows) == len({r.subscriber_id for r in rows}) == 101
        tested = [r for r in rows if r.ab_tested]
        assert Counter(r.variant for r in tested) == {"A": 10, "B": 10, "C": 10}  # round(30% of 101) = 30
        assert all(r.next_attempt_at is None for r in tested)
        rest = [r for r in rows if not r.ab_tested]
        assert {(r.variant, r.next_attempt_at, r.status) for r in rest} == {
            (None, ab_variants.HELD_UNTIL, DeliveryStatus.PENDING)}
        expected = ab_variants.split(campaign_id, [(r.id, r.subscriber_id) for r in rows], 30, ("A", "B", "C"))
        assert {label: sorted(ids) for label, ids in expected.items()} == {
            label: sorted(r.id for r in tested if r.variant == label) for label in "ABC"}
        # Only the test share is ever published while the winner is unknown.
        assert sorted(ledger.publish(campaign_id, 1000)) == sorted(r.id for r in tested)
        assert ledger.publish(campaign_id, 1000) == [] and ab_tests.held(campaign_id) == 71


def _sent_test(campaign_id: int) -> dict[str, list[int]]:
    """The test share as sent; subscriber ids by variant."""
    campaigns.send_now(campaign_id)
    recipients.snapshot(campaign_id)
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.ab_tested.is_(True))
                       .values(status=DeliveryStatus.SENT))
    db.session.commit()
    by_variant: dict[str, list[int]] = {}
    for row in _ledger(campaign_id):
        if row.ab_tested:
            by_variant.setdefault(row.variant, []).append(row.subscriber_id)
    return by_variant


def test_beat_picks_the_variant_with_the_most_human_clickers_once_after_the_wait(app):
    with app.app_context():
        campaign_id = _ab_campaign(60, THREE, prefix="w")
        who = _sent_test(campaign_id)
        c, a = sorted(who["C"]), sorted(who["A"])
        flush.apply("ab-1", [["click", campaign_id, 0, c[0], 0, "", AT], ["click", campaign_id, 0, c[1], 0, "", AT],
                             ["click", campaign_id, 0, a[0], 0, "", AT],
                             # Machines do not count: a scanner clicking every A message would otherwise win.
                             *[["click", campaign_id, 0, s, 1, "scanner", AT] for s in a],
                             # An open is not a click.
                             *[["open", campaign_id, 0, s, 0, "", AT] for s in sorted(who["B"])]])
        published: list[tuple[int, list[list[int]]]] = []
        publish = lambda cid, batches: published.append((cid, batches))  # noqa: E731  (dispatch.Publisher)
        assert ab_tests.decide_due(publish) == {}  # the wait is not over
        later = utcnow() + timedelta(minutes=31)
        assert ab_tests.decide_due(publish, now=later) == {campaign_id: "C"}
        assert ab_tests.decide_due(publish, now=later) == {}  # once
        released = {i for _, batches in published for batch in batches for i in batch}
        rest = [r for r in _ledger(campaign_id) if not r.ab_tested]
        assert released == {r.id for r in rest} and len(rest) == 42  # published once, exactly the rest
        assert {(r.variant, r.status) for r in rest} == {("C", DeliveryStatus.QUEUED)}
        report = ab_tests.report(campaign_id)
        assert [(v["label"], v["sent"], v["clicks"], v["opens"], v["leader"]) for v in report["variants"]] == [
            ("A", 6, 1, 1, False), ("B", 6, 0, 6, False), ("C", 6, 2, 2, True)]
        assert (report["winner"], report["held"]) == ("C", 0)
        with pytest.raises(StateConflict):
            ab_tests.pick(campaign_id, "A", publish)


def test_manual_mode_waits_for_the_marketer(app):
    with app.app_context():
        campaign_id = _ab_campaign(20, {**THREE, "mode": "manual", "wait_minutes": 0}, prefix="m")
        _sent_test(campaign_id)
        assert ab_tests.decide_due(lambda *_: None, now=utcnow() + timedelta(days=1)) == {}
        assert ab_tests.held(campaign_id) == 14 and ab_tests.report(campaign_id)["decide_at"] is None
        with pytest.raises(ValidationError) as refused:
            ab_tests.pick(campaign_id, "D", lambda *_: None)
        assert refused.value.field == "variant"
        assert ab_tests.pick(campaign_id, "B", lambda *_: None) == 14
        assert db.session.get(Campaign, campaign_id).ab_winner == "B"
        with pytest.raises(StateConflict):
            ab_tests.pick(campaign_id, "B", lambda *_: None)
        # Sent, then resent to its non-openers: one message, the winner's.
        db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=CampaignStatus.SENT))
        db.session.commit()
        again = resend.create(campaign_id, "non_openers")
        assert (again.subject, again.ab_share, again.variants) == ("Two", 0, [])


def test_a_cancelled_test_cancels_the_held_rest_and_takes_no_winner(app):
    with app.app_context():
        campaign_id = _ab_campaign(20, THREE, prefix="x")
        _sent_test(campaign_id)
        campaigns.cancel(campaign_id)
        assert {r.status for r in _ledger(campaign_id) if not r.ab_tested} == {DeliveryStatus.CANCELLED}
        with pytest.raises(StateConflict):
            ab_tests.pick(campaign_id, "A", lambda *_: None)
        assert db.session.get(Campaign, campaign_id).status == CampaignStatus.CANCELLED
        # Retried: the cancelled rest is held again for a winner, never sent the campaign's own content.
        assert campaigns.retry_failed(campaign_id) == 14
        assert ab_tests.held(campaign_id) == 14 and ledger.publish(campaign_id, 100) == []
        assert ab_tests.pick(campaign_id, "A", lambda *_: None) == 14


@pytest.mark.parametrize(("change", "field"), [
    ({"variants": [{"subject": "Only one"}]}, "ab_test.variants"),
    ({"variants": [{"subject": "x"}] * 5}, "ab_test.variants"),
    ({"share": 0}, "ab_test.share"),
    ({"share": "lots"}, "ab_test.share"),
    ({"wait_minutes": -1}, "ab_test.wait_minutes"),
    ({"metric": "revenue"}, "ab_test.metric"),
    ({"mode": "sometimes"}, "ab_test.mode"),
    ({"variants": [{"subject": "Fine"}, {"subject": "{{ broken"}]}, "ab_test.variants.1.subject"),
    ({"variants": [{"subject": "Fine"}, {"subject": "Line\nbreak"}]}, "ab_test.variants.1.subject"),
    ({"variants": [{"subject": "Fine"}, {"subject": "Ok", "html": "{% if %}"}]}, "ab_test.variants.1.html"),
])
def test_a_bad_test_is_refused_naming_the_field_and_nothing_is_saved(app, change, field):
    with app.app_context():
        campaign_id = _ab_campaign(2, THREE, prefix="v")
        with pytest.raises(ValidationError) as refused:
            campaigns.update(campaign_id, ab_test={**THREE, **change})
        assert refused.value.field == field
        db.session.rollback()
        assert [v.subject for v in db.session.get(Campaign, campaign_id).variants] == ["One", "Two", "Three"]


def test_a_test_needs_individual_tracking_and_can_be_removed(app):
    with app.app_context():
        list_id, _ = make_audience(2, prefix="t")
        with pytest.raises(ValidationError) as refused:
            make_campaign([list_id], tracking="anonymous", ab_test=THREE)
        assert refused.value.field == "tracking"
        db.session.rollback()
        campaign_id = make_campaign([list_id], tracking="individual", ab_test=THREE)
        assert campaigns.clone(campaign_id).ab_share == 30  # a clone keeps the test
        campaigns.update(campaign_id, ab_test=None)
        campaign = db.session.get(Campaign, campaign_id)
        assert (campaign.ab_share, campaign.variants) == (0, [])


def test_two_picks_at_once_release_the_rest_once(app):
    """A marketer's click and beat's tick together: one wins, the rest is released once, with its label."""
    with app.app_context():
        campaign_id = _ab_campaign(30, {**THREE, "mode": "manual"}, prefix="r")
        _sent_test(campaign_id)
    barrier, results = threading.Barrier(2), []

    def picker(label: str) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results.append((label, ab_tests.pick(campaign_id, label, lambda *_: None)))
            except StateConflict:
                results.append((label, None))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=picker, args=(label,)) for label in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    [(winner, released)] = [result for result in results if result[1] is not None]
    assert len(results) == 2 and released == 21
    with app.app_context():
        rest = [r for r in _ledger(campaign_id) if not r.ab_tested]
        assert {r.variant for r in rest} == {winner} and len(rest) == 21
        assert db.session.get(Campaign, campaign_id).ab_winner == winner
