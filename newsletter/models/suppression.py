"""The global suppression list: addresses that never receive marketing mail."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class SuppressionReason(str, enum.Enum):
    UNSUBSCRIBED_ALL = "unsubscribed-all"
    HARD_BOUNCE = "hard-bounce"
    SOFT_BOUNCES = "soft-bounces"  # the soft-bounce rule (BOUNCE_SOFT_LIMIT within its window)
    COMPLAINT = "complaint"
    MANUAL = "manual"


class Suppression(Model):
    __tablename__ = "suppressions"

    # Normalised like Subscriber.email; survives the subscriber's erasure on purpose.
    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    reason: Mapped[SuppressionReason] = mapped_column(enum_column(SuppressionReason))
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
