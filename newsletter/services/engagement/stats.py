"""Engagement reports, read from the pre-aggregated counters only (never a scan of events)."""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import delete, func, select

from ...extensions import db
from ...models import (
    Campaign,
    CampaignLink,
    EngagementCount,
    EngagementEvent,
    EngagementKind,
    EngagementUnique,
    EngagementUniqueCount,
    Tracking,
)
from ..errors import NotFound

OPEN, CLICK = EngagementKind.OPEN, EngagementKind.CLICK


def campaign_stats(campaign_id: int) -> dict[str, Any]:
    """The pinned report shape: `total`/`unique` count human events, `machine` the others;
    `unique` is None unless the campaign tracks individually (no other mode can know it)."""
    tracking = db.session.scalar(select(Campaign.tracking).where(Campaign.id == campaign_id))
    if tracking is None:
        raise NotFound("campaign", campaign_id)
    sums: dict[tuple, int] = defaultdict(int)
    for kind, link_id, machine, count in db.session.execute(
            select(EngagementCount.kind, EngagementCount.link_id, EngagementCount.machine,
                   func.sum(EngagementCount.count))
            .where(EngagementCount.campaign_id == campaign_id)
            .group_by(EngagementCount.kind, EngagementCount.link_id, EngagementCount.machine)):
        sums[(kind, link_id, machine)] += int(count)
        if kind == CLICK:
            sums[(kind, 0, machine)] += int(count)  # every link together
    knows_unique = tracking == Tracking.INDIVIDUAL
    unique = dict(((kind, link_id), count) for kind, link_id, count in db.session.execute(
        select(EngagementUniqueCount.kind, EngagementUniqueCount.link_id, EngagementUniqueCount.count)
        .where(EngagementUniqueCount.campaign_id == campaign_id)))

    def block(kind: EngagementKind, link_id: int = 0) -> dict[str, int | None]:
        return {"total": sums[(kind, link_id, False)],
                "unique": unique.get((kind, link_id), 0) if knows_unique else None,
                "machine": sums[(kind, link_id, True)]}

    link_rows = db.session.execute(select(CampaignLink.id, CampaignLink.url)
                                   .where(CampaignLink.campaign_id == campaign_id)).all()
    counted = sorted(((block(CLICK, link_id), link_id, url) for link_id, url in link_rows),
                     key=lambda row: (-(row[0]["total"] or 0), -(row[0]["machine"] or 0), row[1]))
    # Most clicked first, then most machine clicks, then the order the links were registered.
    links = [{"url": url, "clicks": block_["total"], "unique": block_["unique"], "machine": block_["machine"]}
             for block_, _, url in counted]
    return {"tracking": tracking.value, "opens": block(OPEN), "clicks": block(CLICK), "links": links}


# A subscriber's tracking history (individual mode): data export and erasure -----------------------

def subscriber_events(subscriber_id: int) -> list[dict[str, Any]]:
    rows = db.session.execute(
        select(EngagementEvent, CampaignLink.url).outerjoin(CampaignLink, CampaignLink.id == EngagementEvent.link_id)
        .where(EngagementEvent.subscriber_id == subscriber_id).order_by(EngagementEvent.id))
    return [{"campaign_id": event.campaign_id, "kind": event.kind.value, "url": url, "machine": event.machine,
             "reason": event.reason, "at": event.at.isoformat()} for event, url in rows]


def erase_subscriber(subscriber_id: int) -> None:
    """Delete the person's events and unique markers (the aggregate counts stay); the caller commits."""
    db.session.execute(delete(EngagementEvent).where(EngagementEvent.subscriber_id == subscriber_id)
                       .execution_options(synchronize_session=False))
    db.session.execute(delete(EngagementUnique).where(EngagementUnique.subscriber_id == subscriber_id)
                       .execution_options(synchronize_session=False))
