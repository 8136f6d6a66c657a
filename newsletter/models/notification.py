"""Transactional notifications: one email to one address, sent through the priority lane.

A notification is rendered when it is accepted (so a broken template is a 422 at the
POST, never a failure later) and then moves queued -> sending (claimed by one worker)
-> committing (just before the final dot) -> sent, back to queued for a retry, or failed.
The same conditional-UPDATE claim and fence as campaign deliveries make it exactly-once.
Every one-off email the platform sends (opt-in confirmations, manage links, test emails,
campaign tests) is a notification too, told apart by its `kind`.
"""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class NotificationStatus(str, enum.Enum):
    QUEUED = "queued"
    SENDING = "sending"
    COMMITTING = "committing"
    SENT = "sent"
    FAILED = "failed"
    # Only one-off mail that is no longer wanted when its turn comes (the lists were confirmed
    # or left meanwhile, the address was suppressed or erased, its links were revoked). An API
    # notification is never cancelled.
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (NotificationStatus.SENT, NotificationStatus.FAILED, NotificationStatus.CANCELLED)


class NotificationKind(str, enum.Enum):
    API = "api"  # POST /api/v1/notifications
    CONFIRMATION = "confirmation"  # the double opt-in request (a live confirm link)
    MANAGE_LINK = "manage_link"  # the magic link to the preference center (a live manage link)
    TEST_EMAIL = "test_email"  # "is delivery working?" from the dashboard or the settings page
    CAMPAIGN_TEST = "campaign_test"  # a campaign's test send (inert links)
    AUTOMATION = "automation"  # an automation's send step (models/automation.py)

    @property
    def carries_live_links(self) -> bool:
        """Its body holds a signed link that acts for the subscriber: never shown in full."""
        return self in (NotificationKind.CONFIRMATION, NotificationKind.MANAGE_LINK)


class Notification(Model):
    __tablename__ = "notifications"
    __table_args__ = (
        # Idempotency keys are scoped to the API key that used them (NULL keys never clash).
        UniqueConstraint("api_key_id", "idempotency_key", name="uq_notifications_api_key_idempotency"),
        # The sweeper looks for rows stuck in one status.
        Index("ix_notifications_status_updated", "status", "updated_at"),
        # The admin's mail log: one kind, newest first; and "what did we send to this address?".
        Index("ix_notifications_kind_id", "kind", "id"),
        Index("ix_notifications_email", "email"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64), default="")  # SHA-256 of the request body
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"), index=True)
    template_id: Mapped[int | None] = mapped_column(ForeignKey("templates.id", ondelete="SET NULL"))
    kind: Mapped[NotificationKind] = mapped_column(enum_column(NotificationKind), default=NotificationKind.API,
                                                  server_default=NotificationKind.API.value)
    email: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(500))
    html: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # API: the values the templates used. One-off mail: what the send re-checks (list ids,
    # the subscriber's token version) and where it came from (campaign id).
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # How the message is built when they differ from the default sender (a campaign test goes
    # out as its campaign: From, Reply-To, List-Id, ...); empty for the others.
    from_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    from_email: Mapped[str] = mapped_column(String(254), default="", server_default="")
    reply_to: Mapped[str] = mapped_column(String(254), default="", server_default="")
    headers: Mapped[list[list[str]]] = mapped_column(JSON, default=list, server_default="[]")
    status: Mapped[NotificationStatus] = mapped_column(enum_column(NotificationStatus),
                                                      default=NotificationStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    claim: Mapped[str | None] = mapped_column(String(40))
    worker: Mapped[str] = mapped_column(String(200), default="")
    task_id: Mapped[str] = mapped_column(String(64), default="")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    smtp_code: Mapped[int | None] = mapped_column()
    smtp_message: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.status.value}>"
