"""A/B tests while and after they run: each variant's numbers, the winner's pick, the rest's release.

The winner is picked by beat once the wait is over (auto mode, `decide_due`) or by the
marketer (`pick`). Picking is one conditional UPDATE of the campaign (only while no winner
is recorded), and in the same transaction the held rows are released with the winner's label:
from then on they are ordinary pending rows, published and claimed exactly once like any
others. Counts come from the ledger and `engagement_uniques` (human events only, individual
tracking), so they are distinct recipients, never machine opens.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, select, update

from ...extensions import db
from ...models import AbMode, Campaign, CampaignStatus, Delivery, DeliveryStatus
from ...models import EngagementKind as K
from ...models import EngagementUnique as U
from ...models.base import utcnow
from .. import audit
from ..errors import NotFound, StateConflict, ValidationError
from ..messages import Message
from . import ab_stats, ab_variants
from .dispatch import IN_FLIGHT_WINDOWS, Publisher, publish_windows

S = CampaignStatus
MAX_WAIT_MINUTES = ab_variants.MAX_WAIT_MINUTES


def _ab_campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    if not campaign.ab_test:
        raise StateConflict("ab_test", "This campaign has no A/B test.")
    return campaign


def counts(campaign_id: int) -> dict[str, dict[str, int]]:
    """Per variant, over its test share: messages sent, distinct human openers (an open or a
    click) and distinct human clickers."""
    tested = (Delivery.campaign_id == campaign_id, Delivery.ab_tested.is_(True))
    result: dict[str, dict[str, int]] = {}
    for label, sent in db.session.execute(select(Delivery.variant, func.count()).where(
            *tested, Delivery.status == DeliveryStatus.SENT).group_by(Delivery.variant)):
        result.setdefault(label or "", {"sent": 0, "opens": 0, "clicks": 0})["sent"] = sent
    for name, kinds in (("opens", [K.OPEN, K.CLICK]), ("clicks", [K.CLICK])):
        joined = and_(U.campaign_id == Delivery.campaign_id, U.subscriber_id == Delivery.subscriber_id,
                      U.link_id == 0, U.kind.in_(kinds))
        for label, people in db.session.execute(
                select(Delivery.variant, func.count(func.distinct(U.subscriber_id))).join(U, joined)
                .where(*tested).group_by(Delivery.variant)):
            result.setdefault(label or "", {"sent": 0, "opens": 0, "clicks": 0})[name] = people
    return result


def decide_at(campaign: Campaign) -> datetime | None:
    """When beat picks the winner (auto mode; None before the test share went out)."""
    if campaign.snapshot_at is None or campaign.ab_mode != AbMode.AUTO:
        return None
    return campaign.snapshot_at + timedelta(seconds=campaign.ab_wait)


def report(campaign_id: int) -> dict[str, Any]:
    """Each variant with its numbers and its comparison with the leader, in words too."""
    campaign = _ab_campaign(campaign_id)
    numbers = counts(campaign_id)
    metric = campaign.ab_metric.value
    arms = [ab_stats.Arm(v.label, numbers.get(v.label, {}).get("sent", 0),
                         numbers.get(v.label, {}).get(metric, 0)) for v in campaign.variants]
    compared = {c.label: c for c in ab_stats.compare(arms)}
    variants = []
    for v in campaign.variants:
        n = numbers.get(v.label, {"sent": 0, "opens": 0, "clicks": 0})
        c = compared[v.label]
        variants.append({
            "label": v.label, "subject": v.subject, "from_name": v.from_name, "has_body": bool(v.html.strip()),
            "sent": n["sent"], "opens": n["opens"], "clicks": n["clicks"],
            "open_rate": n["opens"] / n["sent"] if n["sent"] else 0.0,
            "click_rate": n["clicks"] / n["sent"] if n["sent"] else 0.0,
            "leader": c.leader, "compared_with": c.against, "z": round(c.test.z, 4),
            "p_value": c.test.p_value, "confidence": c.test.confidence, "summary": c.summary(),
        })
    return {"campaign_id": campaign.id, "metric": campaign.ab_metric, "mode": campaign.ab_mode,
            "share": campaign.ab_share,
            "wait_minutes": campaign.ab_wait // 60, "winner": campaign.ab_winner, "decided_at": campaign.ab_decided_at,
            "decide_at": decide_at(campaign) if campaign.ab_winner is None else None,
            "held": held(campaign_id), "test": ab_stats.TEST_NAME, "variants": variants}


def held(campaign_id: int) -> int:
    """Recipients waiting for the winner."""
    return db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING,
        Delivery.variant.is_(None), Delivery.next_attempt_at == ab_variants.HELD_UNTIL)) or 0


def pick(campaign_id: int, label: str, publish: Publisher, automatic: bool = False) -> int:
    """Record `label` as the winner and release the held rows with it; how many were released.

    Once only: a second pick (a user's beside beat's, or a repeated beat tick) is a conflict.
    """
    campaign = _ab_campaign(campaign_id)
    labels = [v.label for v in campaign.variants]
    if label not in labels:
        raise ValidationError("variant", "Choose one of the variants: %(value)s.", value=', '.join(labels))
    if campaign.status not in (S.SENDING, S.PAUSED):
        raise StateConflict("status", "A %(status)s campaign's test is not waiting for a winner.",
                            status=Message(campaign.status.value))
    if campaign.snapshot_at is None:
        raise StateConflict("status", "The test share is still being prepared; try again in a moment.")
    now = utcnow()
    won = db.session.execute(
        update(Campaign).where(Campaign.id == campaign_id, Campaign.ab_winner.is_(None),
                               Campaign.status.in_([S.SENDING, S.PAUSED]))
        .values(ab_winner=label, ab_decided_at=now).returning(Campaign.id)
        .execution_options(synchronize_session=False)).first()
    if won is None:
        db.session.rollback()
        raise StateConflict("ab_test", "The winner was already picked.")
    result = db.session.execute(
        update(Delivery).where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.PENDING,
                               Delivery.variant.is_(None), Delivery.next_attempt_at == ab_variants.HELD_UNTIL)
        .values(variant=label, next_attempt_at=now, updated_at=now)  # due now (ledger.FRESH: behind the cursor)
        .execution_options(synchronize_session=False))
    released = cast(CursorResult, result).rowcount  # one statement, whatever the rest's size
    audit.record("campaign.ab_winner", "campaign", campaign_id, variant=label, released=released,
                 automatic=automatic)
    db.session.commit()
    if db.session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) == S.SENDING:
        publish_windows(campaign_id, IN_FLIGHT_WINDOWS, publish)  # else the resume's dispatch does
    db.session.commit()
    return released


def best(campaign_id: int) -> str:
    """The variant with the highest rate on the campaign's metric (ties: more successes, then A)."""
    campaign = _ab_campaign(campaign_id)
    numbers = counts(campaign_id)
    metric = campaign.ab_metric.value
    return ab_stats.leader([ab_stats.Arm(v.label, numbers.get(v.label, {}).get("sent", 0),
                                         numbers.get(v.label, {}).get(metric, 0))
                            for v in campaign.variants]).label


def decide_due(publish: Publisher, now: datetime | None = None) -> dict[int, str]:
    """Beat: every sending auto-mode test whose wait is over gets its winner; {campaign id: label}.
    Read from the database each tick (no countdowns), safe to run twice (`pick` happens once)."""
    now = now or utcnow()
    candidates = db.session.execute(select(Campaign.id, Campaign.snapshot_at, Campaign.ab_wait).where(
        Campaign.status == S.SENDING, Campaign.ab_share > 0, Campaign.ab_winner.is_(None),
        Campaign.ab_mode == AbMode.AUTO, Campaign.snapshot_at.is_not(None))).all()
    db.session.commit()
    picked = {}
    for campaign_id, snapshot_at, wait in candidates:
        if snapshot_at is None or snapshot_at + timedelta(seconds=wait) > now:
            continue
        label = best(campaign_id)
        try:
            pick(campaign_id, label, publish, automatic=True)
        except StateConflict:  # a user picked (or the campaign stopped) meanwhile
            db.session.rollback()
            continue
        picked[campaign_id] = label
    return picked

