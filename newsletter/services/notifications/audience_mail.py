"""Mail to subscribers about their subscriptions: the double opt-in request and the "manage" magic link.

Both are rendered now, in the subscriber's language (their `language`, else English; see
services/languages.py), with a signed link for the subscriber, and queued as notifications
(one_off) that the transactional lane sends; the caller enqueues `send_notification` after
this module committed.
"""
from __future__ import annotations

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from ...extensions import db
from ...models import MailingList, NotificationKind, Subscriber
from .. import languages
from ..audience import links, subscriptions
from ..audience.tokens import CONFIRM_MAX_AGE, MANAGE_MAX_AGE
from . import one_off


def _bodies(template: str, **context: object) -> tuple[str, str]:
    """(html, text) of templates/emails/<template>.html and .txt."""
    return (render_template(f"emails/{template}.html", **context),
            render_template(f"emails/{template}.txt", **context))


def queue_confirmation(subscriber_id: int, list_ids: list[int], idempotency_key: str | None = None,
                       commit: bool = True) -> int | None:
    """Queue the request to confirm the still-pending lists among `list_ids`; the notification id.

    None when there is nothing to ask any more (confirmed or left meanwhile, suppressed,
    erased): nothing is queued. The send checks the same again when its turn comes.
    `commit=False`: the caller commits (an import queues a whole batch's at once).
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    pending = subscriptions.awaiting_confirmation(subscriber_id, list_ids)
    if subscriber is None or not pending:
        return None
    names = list(db.session.scalars(select(MailingList.name).where(MailingList.id.in_(pending))
                                    .order_by(MailingList.name)))
    version = subscriber.token_version
    with force_locale(languages.ui_locale(subscriber.language)):
        subject = _("Please confirm your subscription to %(list)s", list=names[0]) if len(names) == 1 else \
            _("Please confirm your subscription")
        html, text = _bodies("confirm", name=subscriber.name, lists=names,
                             confirm_url=links.confirm_url(subscriber.id, pending, version),
                             days=CONFIRM_MAX_AGE // 86400)
    return one_off.queue(NotificationKind.CONFIRMATION, subscriber.email, subject, html, text,
                         subscriber_id=subscriber.id, data={"list_ids": pending, "token_version": version},
                         idempotency_key=idempotency_key, commit=commit)


def queue_confirmations(pending: dict[int, list[int]]) -> list[int]:
    """`queue_confirmation` for each subscriber id -> list ids, in one transaction (an import's
    batch); the ids of the notifications queued."""
    queued = [queue_confirmation(subscriber_id, list_ids, commit=False) for subscriber_id, list_ids in pending.items()]
    db.session.commit()
    return [notification_id for notification_id in queued if notification_id is not None]


def queue_manage_link(subscriber_id: int, idempotency_key: str | None = None) -> int | None:
    """Queue the magic link to the preference center; the notification id, None if the subscriber is gone."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    version = subscriber.token_version
    with force_locale(languages.ui_locale(subscriber.language)):
        subject = _("Your link to manage your subscriptions")
        html, text = _bodies("manage_link", name=subscriber.name,
                             manage_url=links.manage_url(subscriber.id, version), hours=MANAGE_MAX_AGE // 3600)
    return one_off.queue(NotificationKind.MANAGE_LINK, subscriber.email, subject, html, text,
                         subscriber_id=subscriber.id, data={"token_version": version},
                         idempotency_key=idempotency_key)
