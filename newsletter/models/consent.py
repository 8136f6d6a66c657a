"""Proof of consent: who opted in to what, when, from where."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow

if TYPE_CHECKING:
    from .subscriber import Subscriber


class ConsentSource(str, enum.Enum):
    FORM = "form"
    IMPORT = "import"
    API = "api"
    ADMIN = "admin"


class ConsentAction(str, enum.Enum):
    SUBSCRIBED = "subscribed"  # asked to join (single opt-in: also the consent)
    CONFIRMED = "confirmed"    # followed the double opt-in link


class ConsentRecord(Model):
    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int | None] = mapped_column(ForeignKey("lists.id", ondelete="SET NULL"))
    action: Mapped[ConsentAction] = mapped_column(enum_column(ConsentAction))
    source: Mapped[ConsentSource] = mapped_column(enum_column(ConsentSource))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Lets a new subscriber and its consent records be added in one flush (ids not known yet).
    subscriber: Mapped[Subscriber] = relationship()
