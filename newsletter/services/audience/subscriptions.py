"""Joining and leaving lists: opt-in, double opt-in confirmation, unsubscribe.

Rules: a suppressed address is never (re)subscribed; single opt-in lists (and admin or
import additions marked confirmed) confirm at once; double opt-in lists wait for the signed
link; every opt-in leaves a consent record. Callers enqueue the confirmation email after
this module has committed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from ...extensions import db
from ...models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    MailingList,
    OptIn,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SubscriptionStatus,
    SuppressionReason,
    TriggerKind,
)
from ...models.base import utcnow
from .. import automation_events, languages
from ..addresses import normalize_email
from ..errors import NotFound
from ..messages import N_
from ..text import one_line
from ..webhooks import webhooks
from . import lists as lists_service
from . import suppressions

BLOCKED = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass
class SubscribeResult:
    subscriber_id: int | None
    created: bool = False
    suppressed: bool = False
    confirmed_list_ids: list[int] = field(default_factory=list)
    pending_list_ids: list[int] = field(default_factory=list)  # need the confirmation email

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.pending_list_ids)


def _consent(subscriber: Subscriber, list_id: int | None, action: ConsentAction, source: ConsentSource,
             ip: str | None, user_agent: str | None) -> None:
    if subscriber.id is None:  # ConsentRecord has no relationship to Subscriber: it needs the id
        db.session.flush()
    db.session.add(ConsentRecord(subscriber_id=subscriber.id, list_id=list_id, action=action, source=source,
                                 ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:512]))


def subscribe(email: str, list_ids: list[int], *, source: ConsentSource, name: str = "",
              attributes: dict[str, Any] | None = None, confirmed: bool = False,
              ip: str | None = None, user_agent: str | None = None,
              language: str | None = None) -> SubscribeResult:
    """Subscribe `email` to `list_ids`; `confirmed` skips double opt-in (admin/import/API).

    `language` (a tag) is kept for a new subscriber, or one whose language is not known yet:
    like the name, a public form must not change what a known person chose.
    """
    email = normalize_email(email)
    name = one_line(name, "name", 200, label=N_("A name"))
    language = languages.normalize(language)
    wanted = lists_service.existing_ids(list_ids)
    if suppressions.is_suppressed(email):
        return SubscribeResult(subscriber_id=None, suppressed=True)
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
    result = SubscribeResult(subscriber_id=None, created=subscriber is None)
    if subscriber is None:
        subscriber = Subscriber(email=email, name=name, attributes=attributes or {}, language=language)
        db.session.add(subscriber)
    elif subscriber.status in BLOCKED:
        return SubscribeResult(subscriber_id=subscriber.id, suppressed=True)
    else:
        if name and not subscriber.name:
            subscriber.name = name
        if language and not subscriber.language:
            subscriber.language = language
        if attributes:
            before = dict(subscriber.attributes or {})
            subscriber.attributes = {**before, **attributes}
            for key in automation_events.changed_attributes(before, subscriber.attributes):
                automation_events.record(TriggerKind.ATTRIBUTE_CHANGED, key, subscriber.id)

    existing = {s.list_id: s for s in subscriber.subscriptions}
    already = {list_id for list_id, sub in existing.items() if sub.status == SubscriptionStatus.CONFIRMED}
    opt_in = dict(db.session.execute(
        select(MailingList.id, MailingList.opt_in).where(MailingList.id.in_(wanted))).all())
    for list_id in wanted:
        sub = existing.get(list_id)
        if sub is not None and sub.status == SubscriptionStatus.CONFIRMED:
            result.confirmed_list_ids.append(list_id)
            continue
        immediate = confirmed or opt_in[list_id] == OptIn.SINGLE
        status = SubscriptionStatus.CONFIRMED if immediate else SubscriptionStatus.UNCONFIRMED
        if sub is None:
            subscriber.subscriptions.append(Subscription(list_id=list_id, status=status))
        else:
            sub.status = status
        (result.confirmed_list_ids if immediate else result.pending_list_ids).append(list_id)
        _consent(subscriber, list_id, ConsentAction.SUBSCRIBED, source, ip, user_agent)

    if result.confirmed_list_ids and subscriber.status != SubscriberStatus.CONFIRMED:
        subscriber.status, subscriber.confirmed_at = SubscriberStatus.CONFIRMED, utcnow()
    elif subscriber.status == SubscriberStatus.UNSUBSCRIBED and result.pending_list_ids:
        subscriber.status = SubscriberStatus.UNCONFIRMED
    if result.created:
        webhooks.emit_subscriber("subscriber.created", subscriber, source=source.value,
                                 list_ids=result.confirmed_list_ids + result.pending_list_ids)
    joined = [i for i in result.confirmed_list_ids + result.pending_list_ids if i not in already]
    if joined:  # automations started by this, committed with it (the consent records flushed the id)
        automation_events.record_many(TriggerKind.SUBSCRIBED, joined, subscriber.id)
        automation_events.record_many(TriggerKind.CONFIRMED,
                                      [i for i in joined if i in result.confirmed_list_ids], subscriber.id)
    db.session.commit()
    result.subscriber_id = subscriber.id
    return result


def confirm(subscriber_id: int, list_ids: list[int], ip: str | None = None,
            user_agent: str | None = None) -> list[int]:
    """Confirm the pending memberships named by a confirmation link; idempotent.

    Returns the lists now confirmed (including ones confirmed earlier).
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status in BLOCKED or suppressions.is_suppressed(subscriber.email):
        return []
    confirmed, newly = [], []
    for sub in subscriber.subscriptions:
        if sub.list_id not in list_ids:
            continue
        if sub.status == SubscriptionStatus.UNCONFIRMED:
            sub.status = SubscriptionStatus.CONFIRMED
            newly.append(sub.list_id)
            _consent(subscriber, sub.list_id, ConsentAction.CONFIRMED, ConsentSource.FORM, ip, user_agent)
        if sub.status == SubscriptionStatus.CONFIRMED:
            confirmed.append(sub.list_id)
    if confirmed and subscriber.status != SubscriberStatus.CONFIRMED:
        subscriber.status, subscriber.confirmed_at = SubscriberStatus.CONFIRMED, utcnow()
    if newly:
        webhooks.emit_subscriber("subscriber.confirmed", subscriber, list_ids=newly)
        automation_events.record_many(TriggerKind.CONFIRMED, newly, subscriber.id)
    db.session.commit()
    return confirmed


def awaiting_confirmation(subscriber_id: int, list_ids: list[int]) -> list[int]:
    """The lists among `list_ids` this subscriber may still be asked to confirm, sorted.

    None when they were confirmed or left meanwhile, or the subscriber bounced, complained,
    was suppressed or erased: the confirmation email is checked against this when it is
    queued and again when its turn to be sent comes.
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None or subscriber.status in BLOCKED or suppressions.is_suppressed(subscriber.email):
        return []
    return sorted(s.list_id for s in subscriber.subscriptions
                  if s.list_id in list_ids and s.status == SubscriptionStatus.UNCONFIRMED)


def unsubscribe(subscriber_id: int, list_ids: list[int] | None = None) -> list[int]:
    """Leave `list_ids`, or every list (and suppress the address) when it is None.

    Returns the lists left. Idempotent: a second call changes nothing.
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return []
    left, was = [], subscriber.status
    for sub in subscriber.subscriptions:
        if (list_ids is None or sub.list_id in list_ids) and sub.status != SubscriptionStatus.UNSUBSCRIBED:
            sub.status = SubscriptionStatus.UNSUBSCRIBED
            left.append(sub.list_id)
    if list_ids is None:
        if subscriber.status not in BLOCKED:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
        suppressions.suppress(subscriber.email, SuppressionReason.UNSUBSCRIBED_ALL)
    elif all(s.status == SubscriptionStatus.UNSUBSCRIBED for s in subscriber.subscriptions):
        if subscriber.status not in BLOCKED:
            subscriber.status = SubscriberStatus.UNSUBSCRIBED
    if left or subscriber.status != was:
        webhooks.emit_subscriber("subscriber.unsubscribed", subscriber, list_ids=left, all_lists=list_ids is None)
    db.session.commit()
    return left


@dataclass(frozen=True)
class Departure:
    """A revisited unsubscribe link: the lists already left, when, and whether the address is
    on the do-not-mail list (left everything), which a subscriber cannot undo themselves."""
    list_ids: list[int]
    left_at: datetime | None
    suppressed: bool


def departure(subscriber_id: int, list_ids: list[int]) -> Departure | None:
    """The link's lists (every list when none) if the subscriber already left all of them, else None."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return None
    suppressed = suppressions.is_suppressed(subscriber.email)
    named = [s for s in subscriber.subscriptions if not list_ids or s.list_id in list_ids]
    if any(s.status != SubscriptionStatus.UNSUBSCRIBED for s in named):
        return None
    if not list_ids and not suppressed and subscriber.status != SubscriberStatus.UNSUBSCRIBED:
        return None
    if list_ids and not named and not suppressed:
        return None  # never on those lists: nothing was left
    left_at = max((s.updated_at for s in named), default=None)
    return Departure(sorted(s.list_id for s in named), left_at, suppressed)


def rejoin(subscriber_id: int, list_ids: list[int], *, ip: str | None = None,
           user_agent: str | None = None) -> SubscribeResult:
    """Join `list_ids` again, keeping the other lists as they are (double opt-in lists confirm)."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber", subscriber_id)
    current = [s.list_id for s in subscriber.subscriptions if s.status != SubscriptionStatus.UNSUBSCRIBED]
    return set_lists(subscriber_id, sorted(set(current) | set(list_ids)), ip=ip, user_agent=user_agent)


def set_lists(subscriber_id: int, list_ids: list[int], *, name: str | None = None,
              ip: str | None = None, user_agent: str | None = None,
              language: str | None = None) -> SubscribeResult:
    """Preference center: stay in exactly `list_ids` (joining ones confirm via double opt-in).

    `name` and `language`, when given, replace the subscriber's: here the person is authenticated
    by their signed link, unlike on the public form.
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber", subscriber_id)
    language = languages.normalize(language)
    if language and language != subscriber.language:
        subscriber.language = language
        db.session.commit()
    wanted = set(lists_service.existing_ids(list_ids))
    if name is not None and one_line(name, "name", 200, label=N_("A name")) != subscriber.name:
        subscriber.name = one_line(name, "name", 200, label=N_("A name"))
        db.session.commit()
    current = {s.list_id for s in subscriber.subscriptions if s.status != SubscriptionStatus.UNSUBSCRIBED}
    leave = sorted(current - wanted)
    if leave:
        unsubscribe(subscriber_id, leave)
    join = sorted(wanted - current)
    if not join:
        return SubscribeResult(subscriber_id=subscriber_id, confirmed_list_ids=sorted(wanted))
    return subscribe(subscriber.email, join, source=ConsentSource.FORM, ip=ip, user_agent=user_agent)
