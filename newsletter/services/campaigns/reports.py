"""Reports: one campaign's numbers after the fact, and the dashboard's activity over time.

Everything is a SQL aggregate over the delivery ledger and the subscribers table; Python only
fills the empty buckets so a chart shows quiet minutes, hours and days as zero.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from ...extensions import db
from ...models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber, dialect
from ...models.base import utcnow
from ..delivery import ledger as deliveries
from .campaigns import get as get_campaign

D = DeliveryStatus
UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
MAX_POINTS = 240  # a longer send is drawn in wider buckets (5, 15, 60 … minutes)


def _as_datetime(value: Any) -> datetime:
    """A bucket as an aware UTC datetime (SQLite answers with text, PostgreSQL with a naive timestamp)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def truncate(moment: datetime, unit: str) -> datetime:
    moment = moment.astimezone(UTC)
    if unit == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _counts_by_bucket(column: Any, unit: str, *where: Any) -> dict[datetime, int]:
    key = dialect.time_bucket(column, unit)
    rows = db.session.execute(select(key, func.count()).where(column.is_not(None), *where).group_by(key))
    return {_as_datetime(moment): int(count) for moment, count in rows if moment is not None}


def _fill(counts: dict[datetime, int], start: datetime, stop: datetime, step: timedelta) -> list[int]:
    """One value per bucket from `start` to `stop` inclusive; zero where nothing happened."""
    values, moment = [], start
    while moment <= stop:
        values.append(counts.get(moment, 0))
        moment += step
    return values


@dataclass(frozen=True)
class Timeline:
    """Counts per bucket: `starts[i]` is when bucket i begins; `series` maps a name to its counts."""
    unit: str
    step: timedelta
    starts: list[datetime]
    series: dict[str, list[int]]

    @property
    def empty(self) -> bool:
        return not any(any(values) for values in self.series.values())


def timeline(start: datetime, stop: datetime, unit: str, queries: dict[str, tuple[Any, Sequence[Any]]]) -> Timeline:
    """One series per named (column, conditions) pair, bucketed by `unit` between `start` and `stop`."""
    step = UNITS[unit]
    first, last = truncate(start, unit), truncate(stop, unit)
    starts = [first + i * step for i in range(int((last - first) / step) + 1)]
    series = {name: _fill(_counts_by_bucket(column, unit, *where), first, last, step)
              for name, (column, where) in queries.items()}
    return Timeline(unit, step, starts, series)


def coarsen(line: Timeline, max_points: int = MAX_POINTS) -> Timeline:
    """Merge neighbouring buckets until at most `max_points` remain (a long send per 5 or 15 minutes)."""
    for factor in (1, 5, 15, 30, 60, 180, 720, 1440):
        if len(line.starts) <= max_points * factor:
            break
    if factor == 1:
        return line
    chunks = range(0, len(line.starts), factor)
    return Timeline(line.unit, line.step * factor, [line.starts[i] for i in chunks],
                    {name: [sum(values[i:i + factor]) for i in chunks] for name, values in line.series.items()})


# One campaign ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class FailureGroup:
    smtp_code: int | None
    count: int
    example: str

    @property
    def kind(self) -> str:
        if self.smtp_code is None:
            return "no answer"  # connection refused, timeout, TLS: the server never replied
        return "temporary" if 400 <= self.smtp_code < 500 else "permanent" if self.smtp_code >= 500 else "other"


@dataclass(frozen=True)
class CampaignReport:
    campaign: Campaign
    by_status: dict[str, int]
    per_minute: Timeline | None
    failures: list[FailureGroup]
    started_at: datetime | None
    finished_at: datetime | None
    exclusions: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def pending(self) -> int:
        return self.total - self.by_status["sent"] - self.by_status["failed"] - self.by_status["cancelled"]

    @property
    def retryable(self) -> int:
        return self.by_status["failed"] + self.by_status["cancelled"]

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    @property
    def duration_seconds(self) -> int | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0, round((self.finished_at - self.started_at).total_seconds()))

    @property
    def peak(self) -> tuple[int, datetime] | None:
        """The most emails sent in one bucket of `per_minute`, and when."""
        if self.per_minute is None or not any(self.per_minute.series["sent"]):
            return None
        sent = self.per_minute.series["sent"]
        best = max(range(len(sent)), key=sent.__getitem__)
        return sent[best], self.per_minute.starts[best]

    @property
    def average_rate(self) -> float | None:
        """Messages accepted per second, over the whole send."""
        if not self.duration_seconds:
            return None
        return self.by_status["sent"] / self.duration_seconds


def failure_groups(campaign_id: int) -> list[FailureGroup]:
    """Failed deliveries grouped by the SMTP server's reply code, biggest group first, one example each."""
    rows = db.session.execute(
        select(Delivery.smtp_code, func.count(), func.min(Delivery.smtp_message))
        .where(Delivery.campaign_id == campaign_id, Delivery.status == D.FAILED)
        .group_by(Delivery.smtp_code))
    groups = [FailureGroup(code, int(count), example or "") for code, count, example in rows]
    return sorted(groups, key=lambda g: (-g.count, g.smtp_code if g.smtp_code is not None else 1000))


def _activity_span(campaign: Campaign) -> tuple[datetime | None, datetime | None]:
    """When the send started and stopped: the campaign's own times, else the ledger's first and last moves."""
    first, last = db.session.execute(
        select(func.min(Delivery.sent_at), func.max(Delivery.sent_at)).where(Delivery.campaign_id == campaign.id)).one()
    first = _as_datetime(first) if first is not None else None
    last = _as_datetime(last) if last is not None else None
    start = campaign.started_at or first
    if campaign.status.finished:
        stop = campaign.finished_at or last
    elif campaign.status in (CampaignStatus.SENDING, CampaignStatus.PAUSED):
        stop = utcnow()
    else:
        stop = last
    return start, stop


def campaign_report(campaign_id: int) -> CampaignReport:
    """Totals, sends and failures per minute, failures by SMTP code, duration and who was left out."""
    campaign = get_campaign(campaign_id)
    start, stop = _activity_span(campaign)
    per_minute = None
    if start is not None and stop is not None:
        mine = Delivery.campaign_id == campaign.id
        per_minute = coarsen(timeline(start, stop, "minute", {
            "sent": (Delivery.sent_at, [mine, Delivery.status == D.SENT]),
            # A failure's last move is the moment it was given up on.
            "failed": (Delivery.updated_at, [mine, Delivery.status == D.FAILED]),
        }))
    exclusions = {"suppressed": campaign.skipped_suppressed, "unsubscribed": campaign.skipped_unsubscribed,
                  "unconfirmed": campaign.skipped_unconfirmed, "duplicate": campaign.duplicates}
    return CampaignReport(campaign, deliveries.counts(campaign.id), per_minute, failure_groups(campaign.id),
                          start, stop, exclusions)


# The dashboard --------------------------------------------------------------------------------

def delivery_activity(unit: str, buckets: int, now: datetime | None = None) -> Timeline:
    """Emails sent and failed per hour or day over the last `buckets` of them, ending now."""
    stop = truncate(now or utcnow(), unit)
    start = stop - (buckets - 1) * UNITS[unit]
    return timeline(start, stop, unit, {
        "sent": (Delivery.sent_at, [Delivery.status == D.SENT, Delivery.sent_at >= start]),
        "failed": (Delivery.updated_at, [Delivery.status == D.FAILED, Delivery.updated_at >= start]),
    })


def subscriber_growth(days: int = 90, now: datetime | None = None) -> Timeline:
    """New subscribers per day over the last `days` days, and the running total ("total")."""
    stop = truncate(now or utcnow(), "day")
    start = stop - (days - 1) * UNITS["day"]
    line = timeline(start, stop, "day", {"new": (Subscriber.created_at, [Subscriber.created_at >= start])})
    running = db.session.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.created_at < start)) or 0
    totals = []
    for new in line.series["new"]:
        running += new
        totals.append(running)
    return Timeline(line.unit, line.step, line.starts, {**line.series, "total": totals})


@dataclass(frozen=True)
class CampaignProgress:
    campaign: Campaign
    done: int
    total: int

    @property
    def percent(self) -> float:
        if not self.total:
            return 100.0 if self.campaign.status.finished else 0.0
        return round(100 * self.done / self.total, 1)


def recent_campaigns(limit: int = 5) -> list[CampaignProgress]:
    """The latest campaigns with how far each got, from one grouped count over their deliveries."""
    found = list(db.session.scalars(select(Campaign).order_by(Campaign.id.desc()).limit(limit)))
    rows = db.session.execute(
        select(Delivery.campaign_id, Delivery.status, func.count())
        .where(Delivery.campaign_id.in_([c.id for c in found])).group_by(Delivery.campaign_id, Delivery.status))
    done: dict[int, int] = {}
    total: dict[int, int] = {}
    for campaign_id, status, count in rows:
        total[campaign_id] = total.get(campaign_id, 0) + count
        if status in (D.SENT, D.FAILED, D.CANCELLED):
            done[campaign_id] = done.get(campaign_id, 0) + count
    return [CampaignProgress(c, done.get(c.id, 0), total.get(c.id, 0)) for c in found]
