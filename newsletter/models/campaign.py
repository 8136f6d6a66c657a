"""Campaigns: what is sent, to which lists and segments, and where the send stands."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model, db
from .ab_test import AbMetric, AbMode, AbVariant
from .base import UTCDateTime, enum_column, utcnow
from .engagement import Tracking
from .segment import Segment, campaign_segments

if TYPE_CHECKING:
    from .layout import Layout
    from .mailing_list import MailingList


class CampaignStatus(str, enum.Enum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (CampaignStatus.SENT, CampaignStatus.CANCELLED, CampaignStatus.FAILED)


class BodyFormat(str, enum.Enum):
    """How a campaign's body is written; `html` is always what is sent (services/campaigns/editors.py)."""
    HTML = "html"  # the HTML itself (no separate source)
    MARKDOWN = "markdown"  # body_source: Markdown, converted to HTML on save
    RICHTEXT = "richtext"  # body_source: the rich-text editor's HTML, cleaned on save
    VISUAL = "visual"  # body_source: the visual editor's project JSON; html: its export


class ResendTo(str, enum.Enum):
    """Whom a resend goes to: the original's recipients without a human open (or click)."""
    NON_OPENERS = "non_openers"  # no human open and no human click (a click proves it was read)
    NON_CLICKERS = "non_clickers"  # no human click


campaign_lists = Table(
    "campaign_lists",
    db.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
)


class Campaign(Model):
    __tablename__ = "campaigns"
    __table_args__ = (
        # Beat looks for due scheduled campaigns and for campaigns still sending.
        Index("ix_campaigns_status_send_at", "status", "send_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    from_name: Mapped[str] = mapped_column(String(200), default="")
    from_email: Mapped[str] = mapped_column(String(254))
    reply_to: Mapped[str] = mapped_column(String(254), default="")
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")  # empty: generated from the HTML
    body_format: Mapped[BodyFormat] = mapped_column(enum_column(BodyFormat), default=BodyFormat.HTML,
                                                    server_default="html")
    body_source: Mapped[str] = mapped_column(Text, default="", server_default="")  # what the editor works on
    layout_id: Mapped[int | None] = mapped_column(ForeignKey("layouts.id", ondelete="SET NULL"))
    # How opens and clicks are tracked ; rows from before tracking: off.
    tracking: Mapped[Tracking] = mapped_column(enum_column(Tracking), default=Tracking.OFF, server_default="off")
    # The sending servers' pool it goes out through (models/sending_server.py); "default": the Settings page's.
    pool: Mapped[str] = mapped_column(String(64), default="default", server_default="default")
    status: Mapped[CampaignStatus] = mapped_column(enum_column(CampaignStatus), default=CampaignStatus.DRAFT)
    status_reason: Mapped[str] = mapped_column(Text, default="")  # why it paused or failed
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    snapshot_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # recipients frozen
    # The publisher's cursor (ledger.publish): fresh pending rows up to this id are on the broker,
    # published (last) at published_at; they stay `pending` until their batch's fence claims them.
    published_through: Mapped[int | None] = mapped_column(BigInteger())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A resend: the snapshot keeps only the original's recipients who did not engage (see
    # services/campaigns/resend.py). The original deleted (NULL, `resend_to` kept): nobody.
    resend_of_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    resend_to: Mapped[ResendTo | None] = mapped_column(enum_column(ResendTo))
    # An A/B test (services/campaigns/ab_tests.py): `ab_share` percent of the recipients get the
    # variants, the rest wait in the ledger (held) until the winner is known. 0: no test.
    ab_share: Mapped[int] = mapped_column(default=0, server_default="0")
    ab_metric: Mapped[AbMetric] = mapped_column(enum_column(AbMetric), default=AbMetric.OPENS, server_default="opens")
    ab_mode: Mapped[AbMode] = mapped_column(enum_column(AbMode), default=AbMode.AUTO, server_default="auto")
    ab_wait: Mapped[int] = mapped_column(default=0, server_default="0")  # seconds from the snapshot to the pick
    ab_winner: Mapped[str | None] = mapped_column(String(1))  # the variant's label, once picked
    ab_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    # Totals, written by the chord callback from the Delivery table (never incremented).
    recipients: Mapped[int] = mapped_column(default=0)
    sent: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    # Deliveries that came back (hard or soft bounce) or drew a complaint, each counted once,
    # added by the bounce rules (services/deliverability/bounces.py) under the delivery's row lock.
    bounced: Mapped[int] = mapped_column(default=0, server_default="0")
    complained: Mapped[int] = mapped_column(default=0, server_default="0")
    totals_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who the snapshot left out, and why (each address counted once, first reason wins).
    skipped_suppressed: Mapped[int] = mapped_column(default=0)
    skipped_unsubscribed: Mapped[int] = mapped_column(default=0)
    skipped_unconfirmed: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)  # on more than one target list: sent once

    lists: Mapped[list[MailingList]] = relationship(secondary=campaign_lists, order_by="MailingList.name")
    # Segments it also goes to: the snapshot takes the union with the lists' members, each address once.
    segments: Mapped[list[Segment]] = relationship(secondary=campaign_segments, order_by=Segment.name)
    layout: Mapped[Layout | None] = relationship()
    variants: Mapped[list[AbVariant]] = relationship(order_by=AbVariant.label, cascade="all, delete-orphan")

    @property
    def ab_test(self) -> bool:
        return self.ab_share > 0

    @property
    def skipped(self) -> int:
        return self.skipped_suppressed + self.skipped_unsubscribed + self.skipped_unconfirmed

    @property
    def pending(self) -> int:
        return max(0, self.recipients - self.sent - self.failed - self.cancelled)

    def __repr__(self) -> str:
        return f"<Campaign {self.id} {self.status.value}>"
