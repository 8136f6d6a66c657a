"""Bounces and complaints: what comes back after a message left (DSNs, feedback reports,
provider events, the API). One row per report; the rules in services/deliverability act on them."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class BounceType(str, enum.Enum):
    HARD = "hard"            # permanent (5.x.x): the address is suppressed at once
    SOFT = "soft"            # transient (4.x.x, mailbox full, ...): suppressed after the soft rule
    COMPLAINT = "complaint"  # the recipient marked the mail as spam (ARF, provider event)


class Bounce(Model):
    __tablename__ = "bounces"
    __table_args__ = (
        # A report seen twice (a mailbox re-read after a crash, a provider's retry) is one report.
        Index("uq_bounces_source_event_id", "source", "event_id", unique=True,
              postgresql_where=text("event_id <> ''"), sqlite_where=text("event_id <> ''")),
        Index("ix_bounces_delivery_id", "delivery_id"),
        Index("ix_bounces_subscriber_id_id", "subscriber_id", "id"),
        Index("ix_bounces_campaign_id_type", "campaign_id", "type"),
        Index("ix_bounces_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    type: Mapped[BounceType] = mapped_column(enum_column(BounceType))
    source: Mapped[str] = mapped_column(String(20))  # mailbox, api, ses, sendgrid, mailgun, postmark
    email: Mapped[str] = mapped_column(String(254), default="")
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    # Not foreign keys: a delivery or notification may be purged while its bounces stay.
    delivery_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    notification_id: Mapped[int | None] = mapped_column()
    status_code: Mapped[str] = mapped_column(String(16), default="")  # "5.1.1", or "550"
    diagnostic: Mapped[str] = mapped_column(String(500), default="")
    event_id: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"<Bounce {self.id} {self.type.value} {self.source}>"
