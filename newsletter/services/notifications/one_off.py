"""One-off mail as rows of the notifications ledger: queued when asked for, re-checked when sent.

Confirmations, manage links, test emails and campaign tests are rendered by the modules that
know them (audience_mail, system_mail, campaigns.send) and queued here as a notification of
their kind; `send_notification` then sends them like any notification: the claim and the
fence, the lane's rate limit, error classification, retries and the sweeper, and a row the
admin finds in the mail log. Mail that acts for a subscriber is checked again when its turn
comes (`reason_to_cancel`): a confirmation for lists confirmed or left meanwhile, or a link
for a subscriber suppressed, erased or whose links were revoked since, is cancelled, not sent.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import Notification, NotificationKind, NotificationStatus, Subscriber, SubscriberStatus
from ...models.subscriber import ERASED_DOMAIN
from ..audience import subscriptions

K = NotificationKind


def queue(kind: NotificationKind, email: str, subject: str, html: str, text: str, *,
          subscriber_id: int | None = None, data: dict[str, Any] | None = None, from_name: str = "",
          from_email: str = "", reply_to: str = "", headers: Iterable[tuple[str, str]] = (),
          idempotency_key: str | None = None, commit: bool = True) -> int:
    """Add a rendered message as a queued notification of `kind`; its id (the caller enqueues the send).

    `idempotency_key`: the same key (and kind) returns the row queued first, so a redelivered
    task message queues nothing twice. Empty `from_email`: the default sender when it is sent.
    """
    if idempotency_key:
        existing = queued_under(kind, [idempotency_key]).get(idempotency_key)
        if existing is not None:
            return existing
    notification = build(kind, email, subject, html, text, subscriber_id=subscriber_id, data=data,
                         from_name=from_name, from_email=from_email, reply_to=reply_to, headers=headers,
                         idempotency_key=idempotency_key)
    db.session.add(notification)
    if commit:
        db.session.commit()
    else:
        db.session.flush()
    return notification.id


def build(kind: NotificationKind, email: str, subject: str, html: str, text: str, *,
          subscriber_id: int | None = None, data: dict[str, Any] | None = None, from_name: str = "",
          from_email: str = "", reply_to: str = "", headers: Iterable[tuple[str, str]] = (),
          idempotency_key: str | None = None) -> Notification:
    """A queued notification of `kind`, not yet in the session: a caller queueing many adds them
    all and flushes once (the automation runner), after checking their keys with `queued_under`."""
    return Notification(
        kind=kind, email=email, subject=subject[:500], html=html, text=text, data=data or {},
        subscriber_id=subscriber_id, idempotency_key=idempotency_key, request_hash="",
        from_name=from_name, from_email=from_email, reply_to=reply_to,
        headers=[[name, value] for name, value in headers], status=NotificationStatus.QUEUED)


def queued_under(kind: NotificationKind, keys: list[str]) -> dict[str, int]:
    """The one-off notifications of `kind` already queued under these idempotency keys: key -> id."""
    if not keys:
        return {}
    return {key: notification_id for key, notification_id in db.session.execute(
        select(Notification.idempotency_key, Notification.id).where(
            Notification.api_key_id.is_(None), Notification.kind == kind, Notification.idempotency_key.in_(keys)))
        if key is not None}


def reason_to_cancel(kind: NotificationKind, email: str, subscriber_id: int | None,
                     data: dict[str, Any]) -> str | None:
    """Why a claimed one-off message must not go out any more, or None to send it (always for the API's)."""
    if kind == K.API:
        return None
    if email.endswith(ERASED_DOMAIN):
        # Erasure blanks the rows about the person, a campaign test personalised as them too.
        return "Not sent: the subscriber's data was erased since it was queued."
    if kind == K.AUTOMATION:
        return _automation_unwanted(subscriber_id)
    if not kind.carries_live_links:
        return None  # test emails and campaign tests: nothing about them can go stale
    subscriber = db.session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    if subscriber is None:
        return "Not sent: the subscriber no longer exists."
    if subscriber.token_version != data.get("token_version", 0):
        # Revoked or erased since it was queued: the link in it would only say "no longer works".
        return "Not sent: the subscriber's email links were revoked (or the data erased) since it was queued."
    if kind == K.CONFIRMATION and not subscriptions.awaiting_confirmation(subscriber.id, data.get("list_ids") or []):
        return "Not sent: nothing left to confirm (confirmed or left meanwhile, or the address is suppressed)."
    return None


def _automation_unwanted(subscriber_id: int | None) -> str | None:
    """An automation's email is marketing: not for someone who left, bounced or complained since."""
    subscriber = db.session.get(Subscriber, subscriber_id) if subscriber_id is not None else None
    return _unwanted_for(subscriber.status if subscriber is not None else None)


def _unwanted_for(status: SubscriberStatus | None) -> str | None:
    if status is None:
        return "Not sent: the subscriber no longer exists."
    if status not in (SubscriberStatus.CONFIRMED, SubscriberStatus.UNCONFIRMED):
        return f"Not sent: the subscriber is {status.value} now."
    return None


def reasons_to_cancel(rows: list[tuple[NotificationKind, str, int | None, dict[str, Any]]]) -> list[str | None]:
    """`reason_to_cancel` for many claimed rows (kind, email, subscriber_id, data), in order: the
    automation emails' subscribers are read in one query, the other kinds row by row."""
    wanted = [sid for kind, email, sid, _ in rows
              if kind == K.AUTOMATION and sid is not None and not email.endswith(ERASED_DOMAIN)]
    statuses = dict(db.session.execute(select(Subscriber.id, Subscriber.status).where(
        Subscriber.id.in_(wanted))).all()) if wanted else {}
    return [(_unwanted_for(statuses.get(sid)) if sid is not None else _unwanted_for(None))
            if kind == K.AUTOMATION and not email.endswith(ERASED_DOMAIN)
            else reason_to_cancel(kind, email, sid, data) for kind, email, sid, data in rows]
