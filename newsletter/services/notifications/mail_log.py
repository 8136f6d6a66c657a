"""The mail log: every notification (API and one-off mail), newest first, by kind, status and address.

Where an admin finds a lost confirmation: its status, attempts and the SMTP server's last
answer. Pages are keyset pages on the id (never an OFFSET, never a count), answered by the
kind and address indexes on `notifications`. Bodies are read one at a time and only ever
shown redacted: a confirmation or manage link holds a signed link that acts for the subscriber.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import Notification, NotificationKind, NotificationStatus
from ...redaction import redact
from ..errors import NotFound, ValidationError
from ..messages import N_
from ..numbers import MAX_BIGINT, whole_number
from ..text import escape_like, one_line

PAGE = 50


@dataclass(frozen=True)
class Filters:
    """A validated mail-log query; build it with `make_filters`."""
    kind: NotificationKind | None = None
    status: NotificationStatus | None = None
    q: str | None = None  # the address, or a part of it

    def as_args(self) -> dict[str, str]:
        """The filters as query-string arguments (the pages round-trip them)."""
        args = {"kind": self.kind and self.kind.value, "status": self.status and self.status.value, "q": self.q}
        return {key: value for key, value in args.items() if value}


def make_filters(kind: Any = None, status: Any = None, q: Any = None) -> Filters:
    try:
        kind = NotificationKind(kind) if kind else None
    except ValueError:
        raise ValidationError("kind", "Unknown kind %(kind)r.", kind=kind) from None
    try:
        status = NotificationStatus(status) if status else None
    except ValueError:
        raise ValidationError("status", "Unknown status %(status)r.", status=status) from None
    return Filters(kind, status, one_line(q, "q", 254, label=N_("The address")).lower() or None)


def _conditions(filters: Filters) -> list[Any]:
    where: list[Any] = []
    if filters.kind is not None:
        where.append(Notification.kind == filters.kind)
    if filters.status is not None:
        where.append(Notification.status == filters.status)
    if filters.q:
        # A whole address is the common question ("did Anna get her confirmation?"): the
        # email index answers it. A part of one is a LIKE, bounded by the page size.
        if "@" in filters.q and "." in filters.q.rpartition("@")[2]:
            where.append(Notification.email == filters.q)
        else:
            where.append(Notification.email.like(f"%{escape_like(filters.q)}%", escape="\\"))
    return where


_COLUMNS = (Notification.id, Notification.kind, Notification.email, Notification.subject, Notification.status,
            Notification.attempts, Notification.smtp_code, Notification.smtp_message, Notification.created_at,
            Notification.updated_at, Notification.sent_at)


@dataclass
class Page:
    rows: list[Any]
    older: str | None  # the cursor of the next (older) page: the last id shown


def page(filters: Filters, cursor: str | None = None, limit: int = PAGE) -> Page:
    """One page, newest first (no bodies); `older` continues after its last row."""
    query = select(*_COLUMNS).where(*_conditions(filters)).order_by(Notification.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(Notification.id < whole_number(cursor, "cursor", "page cursor", MAX_BIGINT))
    rows = list(db.session.execute(query).all())
    more = len(rows) > limit
    return Page(rows[:limit], str(rows[limit - 1].id) if more else None)


def detail(notification_id: int) -> Notification:
    notification = db.session.get(Notification, notification_id)
    if notification is None:
        raise NotFound("notification", notification_id)
    return notification


def redacted_body(notification: Notification) -> str:
    """The plain-text body (else the HTML source) with every subscriber link's token replaced."""
    return redact(notification.text or notification.html or "")


MAX_FOLLOWED = 10  # a test send goes to at most this many addresses


def campaign_tests(campaign_id: int, ids: list[int]) -> list[Any]:
    """The campaign's test emails among `ids` (a test send's), with their status and SMTP answer."""
    ids = ids[:MAX_FOLLOWED]
    if not ids:
        return []
    rows = db.session.execute(select(*_COLUMNS, Notification.data).where(
        Notification.id.in_(ids), Notification.kind == NotificationKind.CAMPAIGN_TEST).order_by(Notification.id)).all()
    db.session.commit()
    return [row for row in rows if (row.data or {}).get("campaign_id") == campaign_id]
