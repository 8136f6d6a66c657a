"""The delivery ledger: one row per (campaign, subscriber), the unit of sending and retry.

A row moves pending -> queued (published to the broker) -> sending (claimed by one worker)
-> committing (the worker is about to hand the message's final dot to the SMTP server)
-> sent, or back to pending for a retry, or to failed / cancelled. Every move is a
conditional UPDATE, so two workers can never both own a row.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class DeliveryStatus(str, enum.Enum):
    PENDING = "pending"
    QUEUED = "queued"
    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.CANCELLED})
IN_FLIGHT = frozenset({DeliveryStatus.QUEUED, DeliveryStatus.SENDING, DeliveryStatus.COMMITTING})


class Delivery(Model):
    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "subscriber_id", name="uq_deliveries_campaign_subscriber"),
        # Publishing windows, progress counts and the sweeper all read one campaign by status; a
        # campaign's ledger in id order across every status (API pages) reads it once per status,
        # merged: a (campaign_id, id) index would cost every ledger write one more entry (0026).
        Index("ix_deliveries_campaign_status_id", "campaign_id", "status", "id"),
        # The send log: newest first by (updated_at, id), over everything or one campaign.
        # Every pipeline move changes `status` (indexed above), so no move is a HOT update
        # anyway: each full index costs one index entry per move. The partial ones cost
        # nothing for the rows outside them (the bulk: sent with 250). See bench/README.md.
        Index("ix_deliveries_updated_at_id", "updated_at", "id"),
        Index("ix_deliveries_campaign_updated_at_id", "campaign_id", "updated_at", "id"),
        Index("ix_deliveries_unsent_status_updated_at_id", "status", "updated_at", "id",
              postgresql_where=text("status IN ('failed', 'cancelled')"),
              sqlite_where=text("status IN ('failed', 'cancelled')")),
        Index("ix_deliveries_code_updated_at_id", "smtp_code", "updated_at", "id",
              postgresql_where=text("smtp_code >= 300"), sqlite_where=text("smtp_code >= 300")),
        # The publisher's due rows (retries, hand-backs, recoveries, an A/B test's held rest): a
        # probe, where the (campaign, status, id) walk read every pending row of the campaign (all of
        # them fresh at the start of a big one) from the heap once a window. Fresh rows are outside it.
        Index("ix_deliveries_campaign_due", "campaign_id", "next_attempt_at",
              postgresql_where=text("status = 'pending' AND next_attempt_at IS NOT NULL"),
              sqlite_where=text("status = 'pending' AND next_attempt_at IS NOT NULL")),
    )

    # BIGINT on PostgreSQL (millions of rows a campaign); SQLite only autoincrements INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # NULL once the subscriber is erased: the row stays, anonymised, so totals still add up.
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[DeliveryStatus] = mapped_column(enum_column(DeliveryStatus), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    claim: Mapped[str | None] = mapped_column(String(40))  # the owning batch run's token
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    smtp_code: Mapped[int | None] = mapped_column()
    smtp_message: Mapped[str] = mapped_column(String(500), default="")
    worker: Mapped[str] = mapped_column(String(200), default="")
    # The Celery task whose batch recorded the latest outcome. With the fields above, a send
    # recorded onto its row is its own history entry: no delivery_attempts row (ledger.record).
    task_id: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # An A/B test's variant label this recipient got (NULL: no test, or held until the winner).
    variant: Mapped[str | None] = mapped_column(String(1))
    ab_tested: Mapped[bool | None] = mapped_column()  # True: in the test share (the rest got the winner)

    def __repr__(self) -> str:
        return f"<Delivery {self.id} c{self.campaign_id} {self.status.value}>"
