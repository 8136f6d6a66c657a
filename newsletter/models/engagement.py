"""Engagement: the links a tracked campaign carries, and the opens and clicks counted on them.

Reports read only pre-aggregated rows (`engagement_counts`, `engagement_unique_counts`), never
the per-subscriber events, so a report costs the same at 1,000 or 1,000,000 recipients.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class Tracking(str, enum.Enum):
    OFF = "off"
    ANONYMOUS = "anonymous"  # counts per campaign and link; no subscriber id stored anywhere
    INDIVIDUAL = "individual"  # per-subscriber events too (unique counts, export, erasure)


class EngagementKind(str, enum.Enum):
    OPEN = "open"
    CLICK = "click"


class CampaignLink(Model):
    """A static link of a tracked campaign, registered once when the campaign is compiled."""
    __tablename__ = "campaign_links"
    __table_args__ = (UniqueConstraint("campaign_id", "url", name="uq_campaign_links_campaign_url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)


class EngagementCount(Model):
    """Events per campaign, link (0: opens), kind, human/machine and hour; added to per flush."""
    __tablename__ = "engagement_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0 for opens (no FK: 0 is no row)
    machine: Mapped[bool] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class EngagementUniqueCount(Model):
    """Distinct subscribers with a human event, per campaign, kind and link (0: any link)."""
    __tablename__ = "engagement_unique_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class EngagementReasonCount(Model):
    """Machine events per campaign, kind and reason (apple_mpp, scanner, ...): the report's breakdown.

    Its own table rather than a column of `engagement_counts`: the reason would multiply that
    table's hour x link rows by six and widen the key every hit's upsert writes, for a breakdown
    read only as campaign totals."""
    __tablename__ = "engagement_reason_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class EngagementDomainCount(Model):
    """Events per campaign, kind, recipient mail domain and human/machine (individual mode only:
    anonymous events carry no subscriber, so no domain)."""
    __tablename__ = "engagement_domain_counts"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), primary_key=True)
    machine: Mapped[bool] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class EngagementUnique(Model):
    """Who already counted as unique (individual mode): the primary key makes `unique` a counter."""
    __tablename__ = "engagement_uniques"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind), primary_key=True)
    link_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True,
                                               index=True)


class EngagementEvent(Model):
    """One open or click of one subscriber (individual mode only)."""
    __tablename__ = "engagement_events"
    __table_args__ = (Index("ix_engagement_events_subscriber_id", "subscriber_id", "id"),
                      Index("ix_engagement_events_campaign_id", "campaign_id", "id"),
                      # Segments' "opened/clicked (any campaign) in the last N days": the human
                      # events of a kind since a time, as subscriber ids from the index alone
                      # (migration 0025; the predicate is the one compile.py writes, so it matches).
                      Index("ix_engagement_events_human_kind_at", "kind", "at", "subscriber_id",
                            postgresql_where=text("machine IS false"), sqlite_where=text("machine IS 0")))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_links.id", ondelete="CASCADE"))
    kind: Mapped[EngagementKind] = mapped_column(enum_column(EngagementKind))
    machine: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(32), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EngagementBatch(Model):
    """A flushed batch of events: written in the transaction that counted it, so a retry is a no-op."""
    __tablename__ = "engagement_batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    events: Mapped[int] = mapped_column(default=0)
    flushed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
