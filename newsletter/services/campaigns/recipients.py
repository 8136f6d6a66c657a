"""Who a campaign goes to: the set-based snapshot of its lists and segments into the delivery ledger."""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import case, false, func, literal, or_, select, true
from sqlalchemy.sql import Select

from ...extensions import db
from ...models import (
    Campaign,
    Delivery,
    DeliveryStatus,
    EngagementKind,
    EngagementUnique,
    ResendTo,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    campaign_lists,
    campaign_segments,
    dialect,
)
from ...models.base import utcnow
from ..audience import statistics, suppressions
from ..audience.segments import segments
from . import ab_variants


def _confirmed_member_of(list_ids: Any) -> Any:
    return select(literal(1)).where(
        Subscription.subscriber_id == Subscriber.id, Subscription.list_id.in_(list_ids),
        Subscription.status == SubscriptionStatus.CONFIRMED,
    ).correlate(Subscriber).exists()


def eligible_subscribers(list_ids: Any, segment: Any = None) -> Select:
    """Confirmed subscribers with a confirmed membership of any of the lists, or matching
    `segment` (a condition from segments.matching), not suppressed.

    Each address appears once, however many of the lists and segments it is in.
    """
    targeted = _confirmed_member_of(list_ids) if segment is None else or_(_confirmed_member_of(list_ids), segment)
    return select(Subscriber.id, Subscriber.email).where(
        Subscriber.status == SubscriberStatus.CONFIRMED, targeted, ~suppressions.address_suppressed())


def segment_condition(campaign_id: int) -> Any:
    """Whom the campaign's segments match (None: it targets none). Their "last N days" count
    from when the campaign started, so every chunk of its snapshot reads the same rules the same way."""
    segment_ids = list(db.session.scalars(select(campaign_segments.c.segment_id)
                                          .where(campaign_segments.c.campaign_id == campaign_id)))
    if not segment_ids:
        return None
    started_at = db.session.scalar(select(Campaign.started_at).where(Campaign.id == campaign_id))
    return segments.matching(segment_ids, now=started_at)


def not_engaged(original_id: int | None, to: ResendTo) -> list[Any]:
    """Conditions on `Subscriber` for a resend: sent the original, and no human open (or click) of it.

    Two correlated index probes per subscriber (the deliveries' (campaign, subscriber) key and
    the uniques' primary key), so the snapshot stays one set-based statement at 1M recipients.
    `engagement_uniques` holds human events only (the flush adds machines to the counters, never
    there): a subscriber whose only opens came from Apple's proxy or a scanner is still a non-opener.
    A human click counts as an open (the pixel may have been blocked, the link was not).
    """
    kinds = [EngagementKind.CLICK] if to == ResendTo.NON_CLICKERS else [EngagementKind.OPEN, EngagementKind.CLICK]
    received = select(literal(1)).where(
        Delivery.campaign_id == original_id, Delivery.subscriber_id == Subscriber.id,
        Delivery.status == DeliveryStatus.SENT).correlate(Subscriber).exists()
    engaged = select(literal(1)).where(
        EngagementUnique.campaign_id == original_id, EngagementUnique.kind.in_(kinds), EngagementUnique.link_id == 0,
        EngagementUnique.subscriber_id == Subscriber.id).correlate(Subscriber).exists()
    return [received, ~engaged]


def audience(campaign_id: int, target: Any, segment: Any = None) -> Select:
    """Who the campaign goes to: the lists' and segments' eligible subscribers, for a resend only
    those who did not engage."""
    resend_of_id, resend_to = db.session.execute(
        select(Campaign.resend_of_id, Campaign.resend_to).where(Campaign.id == campaign_id)).one()
    eligible = eligible_subscribers(target, segment)
    return eligible if resend_to is None else eligible.where(*not_engaged(resend_of_id, resend_to))


SNAPSHOT_CHUNK = 20_000  # recipients frozen per statement
FIRST_CHUNK = 1_000  # the first statement's: sending starts after it (SEND_FIRST_WINDOW overrides)


def snapshot(campaign_id: int, chunk: int = SNAPSHOT_CHUNK) -> int:
    """Freeze every recipient into one pending Delivery each; safe to run twice. Returns the total."""
    while not snapshot_chunk(campaign_id, chunk):
        pass
    return db.session.scalar(select(Campaign.recipients).where(Campaign.id == campaign_id)) or 0


def snapshot_chunk(campaign_id: int, limit: int = SNAPSHOT_CHUNK) -> bool:
    """Freeze the next `limit` recipients, in subscriber id order after those already frozen.

    True once nobody is left: then the exclusions, the total and `snapshot_at` are recorded
    (a campaign is never finished before that). Each chunk commits on its own, so windows
    can go out while the rest is frozen. Safe to run twice, and beside another run: the
    unique (campaign, subscriber) key keeps each address once, and "done" is decided by
    looking for anyone left, not by how many rows this call inserted.

    The first chunk is small (`first_chunk`, SEND_FIRST_WINDOW): the first email waits for it,
    not for 20,000 rows (3 s at 100,000 recipients under load). Stale planner statistics are
    refreshed before it (0.2-0.6 s on 100,000 freshly loaded subscribers; without, its plan can
    be quadratic).
    """
    now = utcnow()
    # The list ids as values, not a subquery: the planner then knows how much of each list is
    # eligible, and walks the subscribers' key up to the chunk's LIMIT instead of sorting every
    # member of the lists first (a 1,000-row chunk of 100,000: 12 ms against 34).
    target = list(db.session.scalars(
        select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == campaign_id)))
    after = _frozen_up_to(campaign_id)
    if not after:
        limit = min(limit, first_chunk())
        # Before the first chunk, even a small one: on stale statistics its INSERT's plan was
        # quadratic at 10,000 fresh subscribers (first email 14-19 s against 3-8 s, same run).
        statistics.refresh_if_stale(db.session.connection())  # chunks are planned as index walks
    # A resend is decided here, not when it was created: an open counted in between drops its reader.
    segment = segment_condition(campaign_id)
    recipients = audience(campaign_id, target, segment)
    eligible = (recipients.where(Subscriber.id > after).order_by(Subscriber.id).limit(limit)
                .subquery())
    # An A/B test's recipients are frozen held; the last chunk releases the test share (ab_variants).
    ab_test = bool(db.session.scalar(select(Campaign.ab_share).where(Campaign.id == campaign_id)))
    rows = select(literal(campaign_id), eligible.c.id, eligible.c.email, literal(DeliveryStatus.PENDING.value),
                  literal(0), literal(now), literal(now), literal(""), literal(""),
                  literal(ab_variants.HELD_UNTIL if ab_test else None, Delivery.next_attempt_at.type)).where(true())
    # (`WHERE true`: SQLite cannot tell `ON CONFLICT` from a join clause after a bare FROM.)
    db.session.connection().execute(
        dialect.insert(Delivery.__table__).from_select(
            ["campaign_id", "subscriber_id", "email", "status", "attempts", "created_at", "updated_at",
             "smtp_message", "worker", "next_attempt_at"], rows,
        ).on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"]))
    left = db.session.scalar(recipients.with_only_columns(Subscriber.id)
                             .where(Subscriber.id > _frozen_up_to(campaign_id)).order_by(Subscriber.id).limit(1))
    if left is not None:
        db.session.commit()
        return False
    campaign = db.session.get(Campaign, campaign_id)
    assert campaign is not None  # its rows were just frozen
    _record_exclusions(campaign, target, segment)
    if ab_test and campaign.snapshot_at is None:  # once: this transaction sets snapshot_at
        ab_variants.assign(campaign_id)
    campaign.recipients = db.session.scalar(
        select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)) or 0
    campaign.snapshot_at = campaign.snapshot_at or now
    db.session.commit()
    return True


def first_chunk() -> int:
    """Recipients frozen before the first window goes out (SEND_FIRST_WINDOW)."""
    return max(1, int(current_app.config.get("SEND_FIRST_WINDOW", FIRST_CHUNK)))


def _frozen_up_to(campaign_id: int) -> int:
    """The highest subscriber id already in the campaign's ledger (an index probe)."""
    return db.session.scalar(select(func.max(Delivery.subscriber_id)).where(Delivery.campaign_id == campaign_id)) or 0


def _record_exclusions(campaign: Campaign, target: Any, segment: Any = None) -> None:
    """Count everyone on the lists or in the segments who is not sent to, by reason, and the
    addresses targeted more than once (on several lists, or on a list and in a segment)."""
    confirmed = func.sum(case((Subscription.status == SubscriptionStatus.CONFIRMED, 1), else_=0))
    unconfirmed = func.sum(case((Subscription.status == SubscriptionStatus.UNCONFIRMED, 1), else_=0))
    suppressed = suppressions.address_suppressed()
    on_list = Subscription.list_id.in_(target)
    in_segment: Any = false() if segment is None else segment
    query = select(Subscriber.id, Subscriber.status, suppressed.label("suppressed"),
                   func.coalesce(confirmed, 0).label("confirmed"), func.coalesce(unconfirmed, 0).label("unconfirmed"),
                   func.max(case((in_segment, 1), else_=0)).label("in_segment"))
    if segment is None:  # lists only: the inner join the snapshot has always used
        query = query.join(Subscription, Subscription.subscriber_id == Subscriber.id).where(on_list)
    else:  # everyone the segments match too, on a target list or not
        query = (query.outerjoin(Subscription, (Subscription.subscriber_id == Subscriber.id) & on_list)
                 .where(or_(Subscription.subscriber_id.is_not(None), segment)))
    members = query.group_by(Subscriber.id, Subscriber.status, Subscriber.email).subquery()
    reason = case(
        (members.c.suppressed
         | members.c.status.in_([SubscriberStatus.BOUNCED.value, SubscriberStatus.COMPLAINED.value]), "suppressed"),
        (members.c.status == SubscriberStatus.UNSUBSCRIBED.value, "unsubscribed"),
        ((members.c.status == SubscriberStatus.CONFIRMED.value)
         & ((members.c.confirmed > 0) | (members.c.in_segment > 0)), "eligible"),
        ((members.c.confirmed == 0) & (members.c.unconfirmed == 0) & (members.c.in_segment == 0), "unsubscribed"),
        else_="unconfirmed",
    )
    counts = {row.reason: (row.people, row.memberships or 0) for row in db.session.execute(
        select(reason.label("reason"), func.count().label("people"),
               func.sum(members.c.confirmed + members.c.in_segment).label("memberships"))
        .group_by(reason))}
    campaign.skipped_suppressed = counts.get("suppressed", (0, 0))[0]
    campaign.skipped_unsubscribed = counts.get("unsubscribed", (0, 0))[0]
    campaign.skipped_unconfirmed = counts.get("unconfirmed", (0, 0))[0]
    people, memberships = counts.get("eligible", (0, 0))
    campaign.duplicates = max(0, int(memberships) - people)
