"""Outgoing webhooks: endpoints an admin registers, and the log of every event sent to them.

Events are written to `webhook_deliveries` in the same transaction as the change they
describe (an outbox), so none is lost when a worker or the broker goes away; a worker
POSTs them, signed, and retries with backoff.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow

EVENTS = (
    "subscriber.created", "subscriber.confirmed", "subscriber.unsubscribed",
    "subscriber.bounced", "subscriber.complained",  # a hard bounce (or the soft rule), a complaint
    "delivery.sent", "delivery.failed", "campaign.finished",
    "notification.sent", "notification.failed",
    "email.opened", "email.clicked",  # one per counted open/click, humans and machines (flagged)
)


class WebhookDeliveryStatus(str, enum.Enum):
    PENDING = "pending"      # waiting for its (next) attempt
    SENDING = "sending"      # claimed by a worker
    DELIVERED = "delivered"  # the receiver answered 2xx
    FAILED = "failed"        # out of attempts


class Webhook(Model):
    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The signing secret is derived from SECRET_KEY and this salt, never stored itself.
    secret_salt: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<Webhook {self.id} {self.url!r}>"


class WebhookDelivery(Model):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
                      Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"))

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the exact JSON body that is signed and sent
    status: Mapped[WebhookDeliveryStatus] = mapped_column(enum_column(WebhookDeliveryStatus),
                                                          default=WebhookDeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    claim: Mapped[str | None] = mapped_column(String(40))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    response_code: Mapped[int | None] = mapped_column()
    response_body: Mapped[str] = mapped_column(String(1000), default="")
    error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<WebhookDelivery {self.id} {self.event} {self.status.value}>"
