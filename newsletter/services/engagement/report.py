"""The engagement report and the dashboard's comparison, from the counter tables only.

Every number here is a sum over `engagement_counts` (hour x link rows), `engagement_unique_counts`,
`engagement_reason_counts` and `engagement_domain_counts`, plus the campaign's own `sent`
counter: the cost depends on hours, links and domains, never on recipients or events.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select

from ...extensions import db
from ...models import (
    Campaign,
    EngagementCount,
    EngagementDomainCount,
    EngagementKind,
    EngagementReasonCount,
    EngagementUniqueCount,
    Tracking,
)
from ..errors import NotFound
from ..messages import N_
from .classify import REASONS
from .stats import campaign_stats

OPEN, CLICK = EngagementKind.OPEN, EngagementKind.CLICK
HOUR = timedelta(hours=1)
TIMELINE_POINTS = 168  # a week of hours; a longer tail is drawn in wider buckets
TOP_DOMAINS = 8

# What each mode can and cannot know, in one line (the report and the API docs say the same; the
# admin page shows it translated: `_(note)`).
MODE_NOTES = {
    Tracking.OFF.value: N_("Not tracked: no pixel and links as written, so nothing about opens or clicks can be "
                           "known."),
    Tracking.ANONYMOUS.value: N_("Anonymous: opens and clicks are counted per campaign and link, nobody is named, "
                                 "so unique readers and mail domains cannot be known."),
    Tracking.INDIVIDUAL.value: N_("Individual: each subscriber's opens and clicks are kept, so unique readers "
                                  "and mail domains are known (and each person can export or erase theirs)."),
}


@dataclass(frozen=True)
class Timeline:
    """Counts per bucket, shaped like campaigns.reports.Timeline so the same chart draws it (not
    imported from there: campaigns already imports engagement, and packages must not cycle)."""
    unit: str
    step: timedelta
    starts: list[datetime]
    series: dict[str, list[int]]


def _coarsen(line: Timeline, max_points: int) -> Timeline:
    """Merge neighbouring hours (3, 6, 12, 24 ...) until at most `max_points` buckets remain."""
    factor = next((f for f in (1, 3, 6, 12, 24, 72, 168) if len(line.starts) <= max_points * f), 168)
    if factor == 1:
        return line
    chunks = range(0, len(line.starts), factor)
    return Timeline(line.unit, line.step * factor, [line.starts[i] for i in chunks],
                    {name: [sum(values[i:i + factor]) for i in chunks] for name, values in line.series.items()})


def _aware(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _rate(count: int | None, sent: int) -> float | None:
    return round(100 * count / sent, 1) if count is not None and sent else None


@dataclass(frozen=True)
class Totals:
    """One kind (opens or clicks): human and machine events, unique humans where known."""
    total: int
    unique: int | None
    machine: int
    sent: int

    @property
    def machine_share(self) -> float | None:
        """Machine events as a percentage of all events."""
        everything = self.total + self.machine
        return round(100 * self.machine / everything, 1) if everything else None

    @property
    def rate(self) -> float | None:
        """Unique humans per 100 sent where known, else human events per 100 sent (repeats count again)."""
        return _rate(self.unique if self.unique is not None else self.total, self.sent)


@dataclass(frozen=True)
class DomainRow:
    domain: str  # "other" for everything past the top ones
    opens: int
    opens_machine: int
    clicks: int
    clicks_machine: int


@dataclass(frozen=True)
class EngagementReport:
    campaign: Campaign
    tracking: str
    note: str
    sent: int
    opens: Totals
    clicks: Totals
    reasons: dict[str, dict[str, int]]  # kind -> reason -> machine events, every reason listed
    links: list[dict[str, Any]]  # the pinned stats' link objects, most clicked first
    timeline: Timeline | None
    domains: list[DomainRow] | None  # None: the mode cannot know them

    @property
    def knows_unique(self) -> bool:
        return self.tracking == Tracking.INDIVIDUAL.value


def _campaign(campaign_id: int) -> Campaign:
    campaign = db.session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign", campaign_id)
    return campaign


def reasons(campaign_id: int) -> dict[str, dict[str, int]]:
    """Machine events per kind and reason; every known reason appears, at 0 when none."""
    found = {kind.value: {reason: 0 for reason in REASONS} for kind in EngagementKind}
    for kind, reason, count in db.session.execute(
            select(EngagementReasonCount.kind, EngagementReasonCount.reason, EngagementReasonCount.count)
            .where(EngagementReasonCount.campaign_id == campaign_id)):
        found[kind.value][reason] = found[kind.value].get(reason, 0) + int(count)
    return found


def timeline(campaign_id: int, start: datetime | None = None) -> Timeline | None:
    """Opens and clicks per hour, human and machine apart ("opens", "opens_machine", "clicks",
    "clicks_machine"), from `start` (the send's start) or the first event to the last; None if none."""
    sums: dict[tuple[str, datetime], int] = defaultdict(int)
    for kind, machine, hour, count in db.session.execute(
            select(EngagementCount.kind, EngagementCount.machine, EngagementCount.hour, func.sum(EngagementCount.count))
            .where(EngagementCount.campaign_id == campaign_id)
            .group_by(EngagementCount.kind, EngagementCount.machine, EngagementCount.hour)):
        name = ("opens" if kind == OPEN else "clicks") + ("_machine" if machine else "")
        sums[(name, _aware(hour))] += int(count)
    if not sums:
        return None
    hours = [hour for _name, hour in sums]
    first, last = min(hours), max(hours)
    if start is not None:
        first = min(first, _aware(start).replace(minute=0, second=0, microsecond=0))
    starts = [first + i * HOUR for i in range(int((last - first) / HOUR) + 1)]
    series = {name: [sums.get((name, moment), 0) for moment in starts]
              for name in ("opens", "opens_machine", "clicks", "clicks_machine")}
    return _coarsen(Timeline("hour", HOUR, starts, series), TIMELINE_POINTS)


def domains(campaign_id: int, top: int = TOP_DOMAINS) -> list[DomainRow]:
    """The `top` mail domains by human opens (then clicks), and one "other" row for the rest."""
    def summed(kind: EngagementKind, machine: bool) -> Any:
        return func.sum(case((and_(EngagementDomainCount.kind == kind, EngagementDomainCount.machine == machine),
                              EngagementDomainCount.count), else_=0))
    columns = [summed(OPEN, False), summed(OPEN, True), summed(CLICK, False), summed(CLICK, True)]
    mine = EngagementDomainCount.campaign_id == campaign_id
    rows = [DomainRow(domain, *(int(v or 0) for v in values)) for domain, *values in db.session.execute(
        select(EngagementDomainCount.domain, *columns).where(mine).group_by(EngagementDomainCount.domain)
        .order_by(columns[0].desc(), columns[2].desc(), EngagementDomainCount.domain).limit(top))]
    everything = [int(v or 0) for v in db.session.execute(select(*columns).where(mine)).one()]
    rest = [whole - sum(getattr(row, field) for row in rows) for whole, field in
            zip(everything, ("opens", "opens_machine", "clicks", "clicks_machine"), strict=True)]
    if any(rest):
        rows.append(DomainRow("other", *rest))
    return rows


def campaign_engagement(campaign_id: int) -> EngagementReport:
    """Everything the campaign's engagement report shows."""
    campaign = _campaign(campaign_id)
    stats = campaign_stats(campaign_id)
    sent = campaign.sent
    individual = stats["tracking"] == Tracking.INDIVIDUAL.value
    return EngagementReport(
        campaign=campaign, tracking=stats["tracking"], note=MODE_NOTES[stats["tracking"]], sent=sent,
        opens=Totals(**stats["opens"], sent=sent), clicks=Totals(**stats["clicks"], sent=sent),
        reasons=reasons(campaign_id), links=stats["links"], timeline=timeline(campaign_id, campaign.started_at),
        domains=domains(campaign_id) if individual else None)


def link_stats(campaign_id: int) -> list[dict[str, Any]]:
    """Per-link stats: the pinned stats' link objects, most clicked first."""
    return campaign_stats(campaign_id)["links"]


def timeline_buckets(campaign_id: int) -> dict[str, Any]:
    """The mode and the hourly timeline as rows for the API: one per hour from the first event to the last."""
    tracking = _campaign(campaign_id).tracking.value
    line = timeline(campaign_id)
    if line is None:
        return {"tracking": tracking, "buckets": []}
    series = line.series
    return {"tracking": tracking, "buckets": [
        {"hour": moment, "opens": {"total": series["opens"][i], "machine": series["opens_machine"][i]},
         "clicks": {"total": series["clicks"][i], "machine": series["clicks_machine"][i]}}
        for i, moment in enumerate(line.starts)]}


# The dashboard --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CampaignRates:
    campaign: Campaign
    sent: int
    opens: Totals
    clicks: Totals


def recent_rates(limit: int = 8) -> list[CampaignRates]:
    """The last `limit` tracked campaigns that sent something, oldest first, with their human rates:
    two grouped sums over their counters, whatever their size."""
    found = list(db.session.scalars(
        select(Campaign).where(Campaign.tracking != Tracking.OFF, Campaign.sent > 0)
        .order_by(Campaign.started_at.desc().nulls_last(), Campaign.id.desc()).limit(limit)))
    ids = [c.id for c in found]
    sums: dict[tuple, int] = defaultdict(int)
    for campaign_id, kind, machine, count in db.session.execute(
            select(EngagementCount.campaign_id, EngagementCount.kind, EngagementCount.machine,
                   func.sum(EngagementCount.count))
            .where(EngagementCount.campaign_id.in_(ids))
            .group_by(EngagementCount.campaign_id, EngagementCount.kind, EngagementCount.machine)):
        sums[(campaign_id, kind, machine)] += int(count)
    unique = {(campaign_id, kind): int(count) for campaign_id, kind, count in db.session.execute(
        select(EngagementUniqueCount.campaign_id, EngagementUniqueCount.kind, EngagementUniqueCount.count)
        .where(EngagementUniqueCount.campaign_id.in_(ids), EngagementUniqueCount.link_id == 0))}

    def totals(campaign: Campaign, kind: EngagementKind) -> Totals:
        known = campaign.tracking == Tracking.INDIVIDUAL
        return Totals(sums[(campaign.id, kind, False)], unique.get((campaign.id, kind), 0) if known else None,
                      sums[(campaign.id, kind, True)], campaign.sent)

    return [CampaignRates(c, c.sent, totals(c, OPEN), totals(c, CLICK)) for c in reversed(found)]
