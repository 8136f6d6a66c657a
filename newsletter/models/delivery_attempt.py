"""Every attempt at sending one delivery: when, what the SMTP server said, which worker and task.

Written once per batch (one multi-row INSERT) next to the ledger update; the delivery row keeps
only the latest outcome, this table keeps the history the send log shows.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, utcnow


class DeliveryAttempt(Model):
    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery_id", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("deliveries.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(32))  # the outcome: sent, failed, pending (retry), released
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    smtp_code: Mapped[int | None] = mapped_column()
    smtp_message: Mapped[str] = mapped_column(String(500), default="")
    worker: Mapped[str] = mapped_column(String(200), default="")
    task_id: Mapped[str] = mapped_column(String(64), default="")

    def __repr__(self) -> str:
        return f"<DeliveryAttempt d{self.delivery_id} #{self.attempt} {self.status}>"
