"""GDPR: everything stored about a subscriber, and erasure of their personal data."""
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import or_, select, update

from ...extensions import db
from ...models import (
    AutomationEvent,
    Bounce,
    Campaign,
    ConsentRecord,
    Delivery,
    Enrollment,
    EnrollmentState,
    MailingList,
    Notification,
    Subscriber,
    SubscriberStatus,
    Subscription,
    SuppressionReason,
)
from ...models.subscriber import ERASED_DOMAIN
from .. import audit
from ..engagement import stats as engagement
from ..errors import NotFound
from . import suppressions, tokens


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def export_subscriber(subscriber_id: int) -> dict[str, Any]:
    """A JSON-ready dict of every row that concerns this subscriber."""
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber", subscriber_id)
    names = dict(db.session.execute(select(MailingList.id, MailingList.name)).all())
    consents = db.session.scalars(select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id)
                                  .order_by(ConsentRecord.id))
    return {
        "subscriber": {
            "id": subscriber.id, "email": subscriber.email, "name": subscriber.name,
            "attributes": subscriber.attributes, "status": subscriber.status.value, "language": subscriber.language,
            "created_at": _iso(subscriber.created_at), "confirmed_at": _iso(subscriber.confirmed_at),
        },
        "subscriptions": [
            {"list_id": s.list_id, "list": names.get(s.list_id), "status": s.status.value,
             "created_at": _iso(s.created_at), "updated_at": _iso(s.updated_at)}
            for s in subscriber.subscriptions
        ],
        "consent": [
            {"action": c.action.value, "source": c.source.value, "list_id": c.list_id, "ip": c.ip,
             "user_agent": c.user_agent, "at": _iso(c.created_at)}
            for c in consents
        ],
        "suppressed": suppressions.is_suppressed(subscriber.email),
        "deliveries": [
            {"campaign_id": d.campaign_id, "campaign": name, "email": d.email, "status": d.status.value,
             "attempts": d.attempts, "smtp_code": d.smtp_code, "sent_at": _iso(d.sent_at)}
            for d, name in db.session.execute(
                select(Delivery, Campaign.name).join(Campaign, Campaign.id == Delivery.campaign_id)
                .where(Delivery.subscriber_id == subscriber_id).order_by(Delivery.id))
        ],
        "notifications": [
            {"id": n.id, "kind": n.kind.value, "email": n.email, "subject": n.subject, "status": n.status.value,
             "data": n.data, "created_at": _iso(n.created_at), "sent_at": _iso(n.sent_at)}
            for n in db.session.scalars(
                select(Notification).where(_notifications_to(subscriber)).order_by(Notification.id))
        ],
        "bounces": [
            {"type": b.type.value, "source": b.source, "email": b.email, "campaign_id": b.campaign_id,
             "status_code": b.status_code, "diagnostic": b.diagnostic, "at": _iso(b.created_at)}
            for b in db.session.scalars(select(Bounce).where(or_(Bounce.subscriber_id == subscriber_id,
                                                                 Bounce.email == subscriber.email)).order_by(Bounce.id))
        ],
        # Opens and clicks of individually tracked campaigns (anonymous ones name nobody).
        "tracking_events": engagement.subscriber_events(subscriber_id),
    }


def _notifications_to(subscriber: Subscriber) -> Any:
    return or_(Notification.subscriber_id == subscriber.id, Notification.email == subscriber.email)


def erase_subscriber(subscriber_id: int) -> None:
    """Remove personal data; keep an anonymous row so delivery counts stay correct.

    The address is replaced by a non-reversible placeholder, name/attributes/consent details
    are deleted, memberships end, and the original address is suppressed so that no later
    import resubscribes it by accident. Every link mailed to the person stops working.
    """
    subscriber = db.session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound("subscriber", subscriber_id)
    original = subscriber.email
    digest = hashlib.sha256(f"{subscriber.id}:{original}".encode()).hexdigest()[:16]
    suppressions.suppress(original, SuppressionReason.MANUAL, note="erased on request (GDPR)")
    subscriber.email = f"erased-{subscriber.id}-{digest}{ERASED_DOMAIN}"
    subscriber.name = ""
    subscriber.attributes = {}
    subscriber.language = None  # personal data too
    subscriber.status = SubscriberStatus.UNSUBSCRIBED
    for consent in db.session.scalars(select(ConsentRecord).where(ConsentRecord.subscriber_id == subscriber_id)):
        db.session.delete(consent)
    db.session.execute(
        Subscription.__table__.delete().where(Subscription.subscriber_id == subscriber_id)
    )
    # The ledger keeps the rows (campaign totals must still add up) but not the address.
    db.session.execute(update(Delivery).where(Delivery.subscriber_id == subscriber_id)
                       .values(email=subscriber.email).execution_options(synchronize_session=False))
    # Transactional mail keeps its status and times; its address and content go.
    db.session.execute(update(Notification).where(or_(Notification.subscriber_id == subscriber_id,
                                                      Notification.email == original))
                       .values(email=subscriber.email, subject="(erased)", html="", text="", data={})
                       .execution_options(synchronize_session=False))
    # Bounce reports keep their type and campaign (the totals); the address and the remote
    # server's words (which often quote it) go.
    db.session.execute(update(Bounce).where(or_(Bounce.subscriber_id == subscriber_id, Bounce.email == original))
                       .values(email=subscriber.email, diagnostic="", subscriber_id=None)
                       .execution_options(synchronize_session=False))
    # Automation events may carry what an application posted about the person; their enrollments
    # end (the automations' counts keep them as exited).
    db.session.execute(AutomationEvent.__table__.delete().where(AutomationEvent.subscriber_id == subscriber_id))
    db.session.execute(update(Enrollment).where(Enrollment.subscriber_id == subscriber_id,
                                                Enrollment.state == EnrollmentState.ACTIVE)
                       .values(state=EnrollmentState.EXITED, current_step_id=None, next_run_at=None)
                       .execution_options(synchronize_session=False))
    engagement.erase_subscriber(subscriber_id)  # campaign counts stay; who opened or clicked goes
    tokens.bump_version(subscriber_id)  # every link mailed so far stops working
    # No personal data in the event, not even the IP: the person may be erasing themself.
    audit.record("subscriber.erased", "subscriber", subscriber_id, with_ip=False)
    db.session.commit()
