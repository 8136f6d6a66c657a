"""Lists people subscribe to."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class OptIn(str, enum.Enum):
    SINGLE = "single"
    DOUBLE = "double"


class MailingList(Model):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    opt_in: Mapped[OptIn] = mapped_column(enum_column(OptIn), default=OptIn.DOUBLE)
    public: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    # "Subscription" is resolved by SQLAlchemy at mapping time; subscription.py imports this module
    # for its own annotations, so importing it back, even for type checking, would be a cycle.
    subscriptions: Mapped[list[Subscription]] = relationship(  # type: ignore[name-defined]  # noqa: F821
        back_populates="mailing_list", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<MailingList {self.id} {self.name!r}>"
