"""Outgoing webhooks: the endpoints admins register, their signing secrets, and `emit`.

`emit` writes one outbox row (`webhook_deliveries`) per active endpoint that wants the event,
in the caller's transaction: the event exists exactly when the change it describes was
committed. `webhook_deliveries` (the service) POSTs the rows. Nobody listening costs one
read of the tiny `webhooks` table per call (per batch on the send path), and nothing else.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from flask import current_app
from sqlalchemy import Row, String, cast, insert, literal, select, true, update

from ...extensions import db
from ...models import (
    WEBHOOK_EVENTS,
    Delivery,
    DeliveryStatus,
    Subscriber,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from ...models.base import utcnow
from .. import audit
from ..errors import NotFound, ValidationError
from . import net_policy

TEST_EVENT = "webhook.test"
SIGNATURE_HEADER = "X-Newsletter-Signature"
EVENT_HEADER = "X-Newsletter-Event"
DELIVERY_HEADER = "X-Newsletter-Delivery"
DELIVERY_EVENTS = ("delivery.sent", "delivery.failed")
_ID_CHUNK = 1000  # ids per UPDATE ... IN (...): well under every driver's parameter limit


# Secrets and signatures (Stripe-style: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "t.body")>`).

def secret_for(webhook: Webhook) -> str:
    """The endpoint's signing secret: derived from SECRET_KEY and its salt, never stored."""
    key = current_app.config["SECRET_KEY"].encode()
    return "whsec_" + hmac.new(key, f"webhook:{webhook.secret_salt}".encode(), hashlib.sha256).hexdigest()


def signature(secret: str, body: str, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: str, header: str, tolerance: float = 300, now: float | None = None) -> bool:
    """What a receiver does (README "Webhooks"): recompute, compare in constant time, check the age."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    fresh = abs((time.time() if now is None else now) - timestamp) <= tolerance
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


# Endpoints.

def allowed_networks() -> tuple[net_policy.IPNetwork, ...]:
    return net_policy.networks(current_app.config.get("WEBHOOK_ALLOWED_NETWORKS") or ())


def clean_url(url: str | None) -> str:
    """A URL the platform may POST to (net_policy: public http(s) receivers only), or ValidationError."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise ValidationError("url", "An address is at most 2,000 characters.")
    try:
        net_policy.check_url(url, allowed_networks())
    except net_policy.Internal as exc:
        raise ValidationError("url", "%(exc)s Webhooks only go to public addresses; the operator can allow an "
                                     "internal receiver with %(setting)s.",
                                     exc=exc, setting=net_policy.SETTING) from None
    except net_policy.Refused as exc:
        raise ValidationError("url", str(exc)) from None
    return url


def clean_events(events: Iterable[str] | None) -> list[str]:
    chosen = set(events or ())
    unknown = chosen - set(WEBHOOK_EVENTS)
    if unknown:
        raise ValidationError("events", "Unknown events: %(value)s.", value=', '.join(sorted(unknown)))
    if not chosen:
        raise ValidationError("events", "Choose at least one event to send.")
    return [event for event in WEBHOOK_EVENTS if event in chosen]


def _new_salt() -> str:
    return secrets.token_hex(16)


def all_webhooks() -> list[Webhook]:
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def get(webhook_id: int) -> Webhook:
    webhook = db.session.get(Webhook, webhook_id)
    if webhook is None:
        raise NotFound("webhook", webhook_id)
    return webhook


def create(url: str, description: str = "", events: Iterable[str] = (), active: bool = True) -> Webhook:
    webhook = Webhook(url=clean_url(url), description=(description or "").strip()[:200],
                      events=clean_events(events), active=bool(active), secret_salt=_new_salt())
    db.session.add(webhook)
    db.session.flush()
    audit.record("webhook.created", "webhook", webhook.id, url=webhook.url, events=webhook.events)
    db.session.commit()
    return webhook


def update_webhook(webhook_id: int, url: str, description: str = "", events: Iterable[str] = (),
                   active: bool = True) -> Webhook:
    webhook = get(webhook_id)
    webhook.url, webhook.events = clean_url(url), clean_events(events)
    webhook.description, webhook.active = (description or "").strip()[:200], bool(active)
    db.session.commit()
    return webhook


def rotate_secret(webhook_id: int) -> Webhook:
    """A new salt, hence a new secret; deliveries signed from now on use it."""
    webhook = get(webhook_id)
    webhook.secret_salt = _new_salt()
    db.session.commit()
    return webhook


def delete(webhook_id: int) -> None:
    """The endpoint and its delivery log (ON DELETE CASCADE)."""
    webhook = get(webhook_id)
    db.session.delete(webhook)
    audit.record("webhook.deleted", "webhook", webhook_id, url=webhook.url)
    db.session.commit()


# Emitting events into the outbox.

def listeners(events: Sequence[str]) -> dict[str, list[int]]:
    """Active endpoints per wanted event; {} when nobody listens (the common, free case).

    No autoflush: callers ask before their own pending rows are complete.
    """
    with db.session.no_autoflush:
        rows = db.session.execute(select(Webhook.id, Webhook.events).where(Webhook.active)).all()
    found: dict[str, list[int]] = {}
    for webhook_id, wanted in rows:
        for event in events:
            if event in (wanted or ()):
                found.setdefault(event, []).append(webhook_id)
    return found


def _json_default(value: Any) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "value"):  # enums
        return str(value.value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write(event: str, webhook_ids: Sequence[int], items: Sequence[dict[str, Any]]) -> int:
    """One outbox row per (endpoint, item), set-based: one INSERT, then one UPDATE per 1,000
    rows that puts each row's own id at the head of its payload. No commit."""
    if not webhook_ids or not items:
        return 0
    now = utcnow()
    rows = []
    for data in items:
        # Everything after `{"id": N, `: the id is known once the row exists.
        tail = json.dumps({"event": event, "created_at": now.isoformat(), "data": data},
                          ensure_ascii=False, default=_json_default)[1:]
        rows += [{"webhook_id": webhook_id, "event": event, "payload": tail, "status": WebhookDeliveryStatus.PENDING,
                  "attempts": 0, "next_attempt_at": now, "response_body": "", "error": "",
                  "created_at": now, "updated_at": now} for webhook_id in webhook_ids]
    table = WebhookDelivery.__table__
    connection = db.session.connection()
    ids = [row[0] for row in connection.execute(insert(table).returning(table.c.id), rows)]
    head = literal('{"id": ') + cast(table.c.id, String) + literal(", ")
    for start in range(0, len(ids), _ID_CHUNK):
        connection.execute(update(table).where(table.c.id.in_(ids[start:start + _ID_CHUNK]))
                           .values(payload=head + table.c.payload))
    return len(ids)


def emit(event: str, data: dict[str, Any]) -> int:
    """Add one outbox row per active webhook subscribed to `event`, in the caller's
    transaction (the caller commits). Returns how many rows were added."""
    return emit_many(event, [data])


def emit_many(event: str, items: Sequence[dict[str, Any]]) -> int:
    if event not in WEBHOOK_EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    if not items:
        return 0
    wanted = listeners([event]).get(event, [])
    return write(event, wanted, items) if wanted else 0


def subscriber_data(subscriber: Subscriber | Row, **extra: Any) -> dict[str, Any]:
    return {"subscriber_id": subscriber.id, "email": subscriber.email, "name": subscriber.name,
            "status": subscriber.status.value if subscriber.status else None, **extra}


def emit_subscriber(event: str, subscriber: Subscriber, **extra: Any) -> int:
    """A subscriber.* event; flushes the caller's new subscriber for its id only if someone listens."""
    wanted = listeners([event]).get(event, [])
    if not wanted:
        return 0
    if subscriber.id is None:
        db.session.flush()
    return write(event, wanted, [subscriber_data(subscriber, **extra)])


def emit_created_subscribers(emails: Sequence[str], source: str, list_ids: Sequence[int] = ()) -> int:
    """subscriber.created for a bulk insert (imports): one read, one INSERT, only if someone listens."""
    wanted = listeners(["subscriber.created"]).get("subscriber.created", [])
    if not wanted or not emails:
        return 0
    items = []
    for start in range(0, len(emails), _ID_CHUNK):
        items += [subscriber_data(row, source=source, list_ids=list(list_ids)) for row in db.session.execute(
            select(Subscriber.id, Subscriber.email, Subscriber.name, Subscriber.status)
            .where(Subscriber.email.in_(emails[start:start + _ID_CHUNK])).order_by(Subscriber.id))]
    return write("subscriber.created", wanted, items)


def emit_delivery_outcomes(delivery_ids: Sequence[int], token: str | None) -> int:
    """delivery.sent / delivery.failed for the rows a batch (claim `token`) just made final
    (`token` None: rows the sweeper made final, whoever had claimed them).

    The send path calls this once per batch: with nobody listening it is one read of
    `webhooks`; otherwise one read of the batch's rows and one INSERT.
    """
    wanted = listeners(DELIVERY_EVENTS)
    if not wanted or not delivery_ids:
        return 0
    rows = db.session.execute(
        select(Delivery.id, Delivery.campaign_id, Delivery.subscriber_id, Delivery.email, Delivery.status,
               Delivery.attempts, Delivery.smtp_code, Delivery.smtp_message, Delivery.sent_at)
        .where(Delivery.id.in_(list(delivery_ids)), true() if token is None else Delivery.claim == token,
               Delivery.status.in_([DeliveryStatus.SENT, DeliveryStatus.FAILED])).order_by(Delivery.id)).all()
    written = 0
    for event, status in (("delivery.sent", DeliveryStatus.SENT), ("delivery.failed", DeliveryStatus.FAILED)):
        items = [{"delivery_id": r.id, "campaign_id": r.campaign_id, "subscriber_id": r.subscriber_id,
                  "email": r.email, "status": r.status.value, "attempts": r.attempts, "smtp_code": r.smtp_code,
                  "smtp_message": r.smtp_message, "sent_at": r.sent_at} for r in rows if r.status == status]
        written += write(event, wanted.get(event, []), items)
    return written
