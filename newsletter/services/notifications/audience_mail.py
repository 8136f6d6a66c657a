"""Transactional mail to subscribers: the double opt-in request and the "manage" magic link."""
from __future__ import annotations

from flask import render_template
from flask_mail import Message
from sqlalchemy import select

from ...extensions import db, mail
from ...models import MailingList, Subscriber, SubscriptionStatus
from .. import settings
from ..audience import links, suppressions
from ..audience.subscriptions import BLOCKED
from ..audience.tokens import CONFIRM_MAX_AGE, MANAGE_MAX_AGE


def _send(to: str, subject: str, template: str, **context: object) -> str:
    message = Message(
        subject=subject,
        recipients=[to],
        sender=settings.get("MAIL_DEFAULT_SENDER"),
        body=render_template(f"emails/{template}.txt", **context),
        html=render_template(f"emails/{template}.html", **context),
    )
    mail.send(message, settings.smtp())
    return message.msgId


def send_confirmation(subscriber_id: int, list_ids: list[int]) -> str | None:
    """Ask the subscriber to confirm the still-pending lists among `list_ids`.

    Returns the Message-ID, or None when there is nothing to ask any more (confirmed or left
    meanwhile, suppressed, erased): a retried or late task then sends nothing.
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status in BLOCKED or suppressions.is_suppressed(subscriber.email):
        return None
    pending = sorted(s.list_id for s in subscriber.subscriptions
                     if s.list_id in list_ids and s.status == SubscriptionStatus.UNCONFIRMED)
    if not pending:
        return None
    names = list(db.session.scalars(select(MailingList.name).where(MailingList.id.in_(pending))
                                    .order_by(MailingList.name)))
    subject = f"Please confirm your subscription to {names[0]}" if len(names) == 1 else \
        "Please confirm your subscription"
    return _send(subscriber.email, subject, "confirm", name=subscriber.name, lists=names,
                 confirm_url=links.confirm_url(subscriber.id, pending),
                 days=CONFIRM_MAX_AGE // 86400)


def send_manage_link(subscriber_id: int) -> str | None:
    """Mail the magic link to the preference center; None if the subscriber is gone."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    return _send(subscriber.email, "Your link to manage your subscriptions", "manage_link",
                 name=subscriber.name, manage_url=links.manage_url(subscriber.id),
                 hours=MANAGE_MAX_AGE // 3600)
