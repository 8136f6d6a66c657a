"""The global suppression list: checked before any marketing send or (re)subscription."""
from __future__ import annotations

from typing import Any

from sqlalchemy import literal, select

from ...extensions import db
from ...models import Subscriber, Suppression, SuppressionReason
from .. import audit


def is_suppressed(email: str) -> bool:
    return db.session.get(Suppression, email) is not None


def suppress(email: str, reason: SuppressionReason, note: str = "") -> Suppression:
    """Add `email` (already normalised); keeps the first reason if it is already there. No commit."""
    row = db.session.get(Suppression, email)
    if row is None:
        row = Suppression(email=email, reason=reason, note=note[:500])
        db.session.add(row)
    return row


def lift(email: str) -> bool:
    """Remove a suppression (an admin's decision, audited: the address may be mailed again);
    True if there was one."""
    row = db.session.get(Suppression, email)
    if row is None:
        return False
    audit.record("suppression.lifted", "suppression", email=row.email, reason=row.reason, note=row.note,
                 since=row.created_at)
    db.session.delete(row)
    db.session.commit()
    return True


def list_suppressions(limit: int = 100, after: str | None = None) -> list[Suppression]:
    query = select(Suppression).order_by(Suppression.email).limit(limit)
    if after:
        query = query.where(Suppression.email > after)
    return list(db.session.scalars(query))


def address_suppressed() -> Any:
    """EXISTS(a suppression for Subscriber.email), correlated: negate it to keep the sendable."""
    return select(literal(1)).where(Suppression.email == Subscriber.email).correlate(Subscriber).exists()
