"""Shared column helpers for the models."""
from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Called per row (never evaluated once at import)."""
    return datetime.now(UTC)


class _UTCDateTime(TypeDecorator):
    """TIMESTAMP WITH TIME ZONE, and aware datetimes on the way out on every database:
    SQLite keeps no offset, so what it hands back (stored as UTC) gets UTC attached."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


def UTCDateTime() -> TypeDecorator:
    return _UTCDateTime()


def enum_column(enum_class: type[enum.Enum]) -> Enum:
    """Store an enum's values as plain strings: portable across SQLite and PostgreSQL."""
    return Enum(
        enum_class,
        native_enum=False,
        length=32,
        validate_strings=True,
        values_callable=lambda cls: [member.value for member in cls],
    )


# Indexes that exist only in the migrations (expression indexes Alembic cannot render from
# the models); autogenerate and the drift test leave them alone.
MIGRATION_ONLY_INDEXES = frozenset({"ix_subscribers_search_trgm", "ix_subscribers_attributes_gin"})


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


def render_item(type_: str, obj: object, autogen_context: Any) -> str | bool:
    """Autogenerate writes our UTC column type as the plain type it stores (migrations never
    import the application)."""
    if type_ == "type" and isinstance(obj, _UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False
