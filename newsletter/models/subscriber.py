"""People who receive mail: one row per address, normalised to lower case."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ColumnElement, Index, String, literal_column
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow

ERASED_DOMAIN = "@erased.invalid"  # what GDPR erasure leaves in place of the address


class SubscriberStatus(str, enum.Enum):
    UNCONFIRMED = "unconfirmed"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"


class Subscriber(Model):
    __tablename__ = "subscribers"
    __table_args__ = (
        Index("ix_subscribers_status_id", "status", "id"),
        # Segments' signup-date conditions (an index-only scan of a date range; migration 0022).
        Index("ix_subscribers_created_at_id", "created_at", "id"),
        # On PostgreSQL the migration adds ix_subscribers_search_trgm, a trigram GIN index on
        # search_text() (see below). One index over email and name costs imports ~6 µs a row
        # less than two (bench/README.md); Alembic cannot compare expression indexes, so it
        # lives in the migration only.
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored normalised (lower case), so uniqueness is case-insensitive and imports can
    # upsert with ON CONFLICT (email).
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=dict)
    status: Mapped[SubscriberStatus] = mapped_column(enum_column(SubscriberStatus),
                                                     default=SubscriberStatus.UNCONFIRMED)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Signed in every link we mail (unsubscribe, preferences, web view, ...): raising it
    # ("revoke links", erasure) makes all earlier links to this person stop working.
    token_version: Mapped[int] = mapped_column(default=0, server_default="0")
    # Preferred language, a normalised BCP 47 tag ("de", "pt-BR"; i18n/languages.py); NULL: not known,
    # the browser's Accept-Language (pages) or the default (mail) decides.
    language: Mapped[str | None] = mapped_column(String(16))

    # "Subscription" is resolved by SQLAlchemy at mapping time; subscription.py imports this module
    # for its own annotations, so importing it back, even for type checking, would be a cycle.
    subscriptions: Mapped[list[Subscription]] = relationship(  # type: ignore[name-defined]  # noqa: F821
        back_populates="subscriber", cascade="all, delete-orphan", passive_deletes=True
    )

    def __repr__(self) -> str:
        return f"<Subscriber {self.id} {self.status.value}>"


def search_text() -> ColumnElement[str]:
    """`email || ' ' || name`, spelled exactly like the trigram index so PostgreSQL uses it
    for `search_text().ilike('%q%')` (a bound ' ' parameter would not match the index)."""
    return Subscriber.email.op("||")(literal_column("' '")).op("||")(Subscriber.name)
