"""Transactional notifications: accept (render, idempotency), send exactly once, retry, recover.

`accept` renders the message when the API call arrives (a broken template or a name missing
from `data` is a 422 then, never a failure later) and commits it `queued`; the caller then
enqueues `send_notification`. `send` claims the row with a token (conditional UPDATE), waits
for the transactional lane's own rate limit (NOTIFY_RATE, never the campaigns' SEND_RATE),
fences the row sending -> committing right before the final dot (delivery.fences.FenceLine),
and records the outcome together with its webhook event. Retries and lost messages are
driven from the database by the sweeper (`recover_stale`, `take_due`), as for campaigns.

The platform's one-off mail (confirmations, manage links, test emails, campaign tests) is
queued into the same ledger by `one_off` with its own `kind` and sent by the same `send`:
one send path. Only API notifications (kind `api`) are listed by the API and raise webhook
events; one-off mail that acts for a subscriber is re-checked after its claim and cancelled
when it is no longer wanted.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import (
    Notification,
    NotificationKind,
    NotificationStatus,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
    dialect,
)
from ...models.base import utcnow
from ...sending import message as mime
from ...sending import pools, smtp
from ...sending.errors import Kind, SmtpFailure
from ...sending.limiter import NOTIFY_KEY, RateLimiter, thread_limiter
from ...sending.render import CompiledMessage, RenderError
from .. import settings
from ..addresses import normalize_email
from ..deliverability import dkim, verp
from ..delivery import leases, servers
from ..delivery.fences import FenceLine
from ..delivery.retries import retry_delay
from ..errors import Conflict, NotFound, ValidationError
from ..messages import Message
from ..webhooks import webhooks
from . import one_off, templates

N = NotificationStatus
K = NotificationKind
_NO_SYNC = {"synchronize_session": False}
MAX_RATE_WAIT = 5.0  # seconds a transactional worker may wait for its rate before handing the row back
# Transactional mail ignores marketing opt-outs, but never goes to an address that bounced or complained.
BLOCKING_REASONS = (SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT)
BLOCKING_STATUSES = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)
MAX_DATA_BYTES = 64 * 1024  # `data` is stored with every notification: values for a message, not a payload


# Accepting ------------------------------------------------------------------------------------

def get(notification_id: int, kind: NotificationKind | None = None) -> Notification:
    """One notification (of `kind`, when given: the API sees only its own)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or (kind is not None and notification.kind != kind):
        raise NotFound("notification", notification_id)
    return notification


def request_hash(body: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a request: same fields and values, same hash."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _replay(api_key_id: int | None, key: str, digest: str) -> Notification | None:
    existing = db.session.scalar(select(Notification).where(
        Notification.api_key_id == api_key_id, Notification.idempotency_key == key, Notification.kind == K.API))
    if existing is not None and existing.request_hash != digest:
        raise Conflict("Idempotency-Key", "This Idempotency-Key was already used with a different request body.")
    return existing


def _check_data_size(data: Any) -> None:
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8"))
    if size > MAX_DATA_BYTES:
        raise ValidationError("data", "At most %(limit)s KB of JSON; this is %(size)s KB. Send the values the "
                                      "templates use, not whole documents.",
                                      limit=MAX_DATA_BYTES // 1024, size=format(size / 1024, ',.0f'))


def _recipient(to: dict[str, Any]) -> tuple[str, Subscriber | None]:
    """(address, subscriber) for `{email}` or `{subscriber_id}`; refused if it bounced or complained."""
    if to.get("subscriber_id") is not None:
        subscriber = db.session.get(Subscriber, to["subscriber_id"])
        if subscriber is None:
            raise ValidationError("to", "No subscriber with id %(subscriber_id)s.", subscriber_id=to['subscriber_id'])
        email = subscriber.email
    else:
        email = normalize_email(to.get("email", ""), field="to")
        subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
    suppression = db.session.get(Suppression, email)
    if suppression is not None and suppression.reason in BLOCKING_REASONS:
        raise ValidationError("to", "This address is suppressed (%(reason)s): no mail goes to it, transactional or "
                                    "not.", reason=Message(suppression.reason.value))
    if subscriber is not None and subscriber.status in BLOCKING_STATUSES:
        raise ValidationError("to", "This subscriber's address %(status)s: no mail goes to it.",
                              status=Message(subscriber.status.value))
    return email, subscriber


def _render(body: dict[str, Any], subscriber: Subscriber | None) -> tuple[str, str, str]:
    """(subject, html, text) rendered strictly with `data`; errors name the request field at fault."""
    parts = {key: body.get(key) for key in ("subject", "html", "text")}
    origin = {key: key for key in parts}
    if body.get("template_id") is not None:
        template = templates.get(body["template_id"], field="template_id")
        for key in parts:  # the request's own parts, when given, override the template's
            if parts[key] is None:
                parts[key], origin[key] = getattr(template, key), "template_id"
    if not (parts["subject"] or "").strip():
        raise ValidationError("subject", "A notification needs a subject (or a template_id).")
    if not (parts["html"] or "").strip() and not (parts["text"] or "").strip():
        raise ValidationError("html", "A notification needs html or text (or a template_id).")
    context: dict[str, Any] = {}
    if subscriber is not None:
        context["subscriber"] = {"email": subscriber.email, "name": subscriber.name,
                                 "attributes": dict(subscriber.attributes or {})}
    context.update(body.get("data") or {})
    try:
        rendered = CompiledMessage(parts["subject"] or "", parts["html"] or "", parts["text"] or "",
                                   strict=True).render(context)
    except RenderError as exc:
        if exc.undefined:
            raise ValidationError("data", "%(field_name)s: %(reason)s", field_name=exc.field,
                                  reason=exc.message) from None
        raise ValidationError(origin.get(exc.field, exc.field), exc.message) from None
    if len(rendered.subject) > 500:
        raise ValidationError(origin["subject"], "The rendered subject is longer than 500 characters.")
    return rendered.subject, rendered.html, rendered.text


def accept(body: dict[str, Any], api_key_id: int | None = None,
           idempotency_key: str | None = None) -> tuple[Notification, bool]:
    """Validate, render and commit a queued notification; (it, created). Replays are not created.

    The same Idempotency-Key (per API key) with the same body returns the first notification;
    with a different body it is a Conflict. The caller enqueues the send only when created.
    """
    _check_data_size(body.get("data") or {})
    digest = request_hash(body)
    if idempotency_key and (existing := _replay(api_key_id, idempotency_key, digest)) is not None:
        return existing, False
    email, subscriber = _recipient(body["to"])
    subject, html, text = _render(body, subscriber)
    notification = Notification(
        api_key_id=api_key_id, idempotency_key=idempotency_key or None, request_hash=digest,
        subscriber_id=subscriber.id if subscriber else None, template_id=body.get("template_id"), email=email,
        subject=subject, html=html, text=text, data=body.get("data") or {}, status=N.QUEUED)
    db.session.add(notification)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if not idempotency_key:
            raise
        winner = _replay(api_key_id, idempotency_key, digest)  # a concurrent request with the same key won
        if winner is None:
            raise
        return winner, False
    return notification, True


def recent(limit: int, before: int | None = None, status: str | None = None) -> list[Notification]:
    """API notifications, newest first, `limit` rows from below the id `before`.

    One-off mail is not listed: its bodies carry subscribers' live links, and API clients
    list what they sent (the admin's mail log shows every kind)."""
    query = select(Notification).where(Notification.kind == K.API).order_by(Notification.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Notification.id < before)
    if status:
        query = query.where(Notification.status == N(status))
    return list(db.session.scalars(query))


# Sending --------------------------------------------------------------------------------------

def limiter() -> RateLimiter:
    """The lane's cluster-wide bucket (NOTIFY_RATE, its own Redis key)."""
    config = current_app.config
    # Its own GCRA bucket: campaigns can never use up this lane.
    return thread_limiter(config["REDIS_URL"], settings.get("NOTIFY_RATE"), prefix=NOTIFY_KEY)


@dataclass(frozen=True)
class Claimed:
    id: int
    email: str
    subject: str
    html: str
    text: str
    attempts: int
    kind: NotificationKind
    subscriber_id: int | None
    data: dict[str, Any]
    from_name: str
    from_email: str
    reply_to: str
    headers: list[list[str]]


def claim(notification_id: int, token: str, worker: str) -> Claimed | None:
    """queued -> sending if the row is queued and due; None if someone else has it (or not yet)."""
    found = claim_many([notification_id], token, worker)
    return found[0] if found else None


def claim_many(notification_ids: list[int], token: str, worker: str) -> list[Claimed]:
    """queued -> sending for those of the rows that are queued and due, in one UPDATE and commit
    (the rest: someone else has them, or not yet); in the order of `notification_ids`."""
    now = utcnow()
    rows = db.session.execute(
        update(Notification).where(dialect.in_values(Notification.id, notification_ids),
                                   Notification.status == N.QUEUED,
                                   or_(Notification.next_attempt_at.is_(None), Notification.next_attempt_at <= now))
        .values(status=N.SENDING, claim=token, worker=worker[:200], attempts=Notification.attempts + 1,
                updated_at=now)
        .returning(Notification.id, Notification.email, Notification.subject, Notification.html,
                   Notification.text, Notification.attempts, Notification.kind, Notification.subscriber_id,
                   Notification.data, Notification.from_name, Notification.from_email, Notification.reply_to,
                   Notification.headers)
        .execution_options(**_NO_SYNC)).all()
    db.session.commit()
    # 13 columns: past the arity SQLAlchemy types a Row by, so it is unpacked as a plain tuple.
    claimed = {row[0]: Claimed(*tuple(row)) for row in rows}
    return [claimed[i] for i in notification_ids if i in claimed]


def _fresh(notification_id: int) -> Notification:
    """The row as the UPDATE just left it (the session may hold an older copy)."""
    notification = db.session.get(Notification, notification_id, populate_existing=True)
    assert notification is not None  # the caller's UPDATE just returned it
    return notification


def _event(notification: Notification) -> dict[str, Any]:
    # Shaped like the delivery.* events (webhooks.emit_delivery_outcomes).
    return {"notification_id": notification.id, "subscriber_id": notification.subscriber_id,
            "email": notification.email, "status": notification.status.value,
            "attempts": notification.attempts, "smtp_code": notification.smtp_code,
            "smtp_message": notification.smtp_message,
            "sent_at": notification.sent_at.isoformat() if notification.sent_at else None}


def finish(notification_id: int, token: str, status: NotificationStatus, code: int | None, text: str,
            retry_at: datetime | None = None, undo_attempt: bool = False) -> bool:
    """Write an outcome onto the row if this claim still owns it; a final one with its webhook event."""
    now = utcnow()
    values: dict[str, Any] = dict(status=status, smtp_code=code, smtp_message=(text or "")[:500], updated_at=now,
                                  next_attempt_at=retry_at)
    if status == N.SENT:
        values["sent_at"] = now
    if status == N.QUEUED:
        values["claim"] = None
    if undo_attempt:
        values["attempts"] = Notification.attempts - 1
    # SENT too: the sweeper may have assumed a slow worker's committing row delivered.
    done = db.session.execute(
        update(Notification).where(Notification.id == notification_id, Notification.claim == token,
                                   Notification.status.in_([N.SENDING, N.COMMITTING, N.SENT]))
        .values(**values).returning(Notification.id).execution_options(**_NO_SYNC)).first() is not None
    if done and status.terminal:
        _emit(f"notification.{status.value}", _fresh(notification_id))
    db.session.commit()
    metrics.messages("notification", [(status.value, undo_attempt, code)])
    return done


def _emit(event: str, notification: Notification) -> None:
    # Only the API's own notifications: receivers correlate them with the ids their POSTs got
    # back. One-off mail has its own events where it matters (subscriber.confirmed, ...).
    if notification.kind == K.API:
        webhooks.emit(event, _event(notification))


def envelope(row: Claimed, current: settings.Snapshot) -> mime.Envelope:
    """The claimed row's message, DKIM-signed, from its sender or the default one."""
    config = current_app.config
    # A campaign test goes out as its campaign; everything else from the default sender.
    from_name, from_email = (row.from_name, row.from_email) if row.from_email else settings.default_sender(current)
    domain = urlsplit(config["BASE_URL"]).hostname or "localhost"
    headers = [("X-Newsletter-Notification", str(row.id)), ("Auto-Submitted", "auto-generated")]
    from_email = from_email or "newsletter@localhost"
    built = mime.build(from_name=from_name, from_email=from_email, to=row.email,
                       subject=row.subject, html=row.html, text=row.text, reply_to=row.reply_to,
                       message_id=mime.message_id(domain, "n", row.id), return_path=verp.return_path("n", row.id),
                       extra_headers=headers + [(name, value) for name, value in row.headers])
    return dkim.sign(built, from_email)


def send(notification_id: int, worker: str = "") -> str:
    """Send one notification if it is still queued and due; returns what happened (for the task's log)."""
    token = leases.current().token()  # the claim names this process's liveness lease
    row = claim(notification_id, token, worker)
    if row is None:
        return "not-claimed"
    return deliver(row, token)


def deliver(row: Claimed, token: str) -> str:
    """Send a claimed notification: re-check, rate, fence, SMTP, outcome."""
    reason = one_off.reason_to_cancel(row.kind, row.email, row.subscriber_id, row.data)
    if reason:
        finish(row.id, token, N.CANCELLED, None, reason)
        return "cancelled"
    db.session.commit()  # end the read: no transaction stays open across SMTP I/O
    # The test email checks the settings just saved, so it reads them fresh, not from the cache.
    current = settings.effective(fresh=row.kind == K.TEST_EMAIL)
    rate = limiter()
    wait = rate.reserve(1, max_wait=MAX_RATE_WAIT)
    if wait is None:  # the lane is at NOTIFY_RATE: hand it back, the sweeper publishes it when due
        metrics.LIMITER_REFUSALS.labels("notifications").inc()
        retry_at = utcnow() + timedelta(seconds=max(1.0, rate.refused_wait))
        finish(row.id, token, N.QUEUED, None, "Waiting for the notification rate limit.", retry_at, undo_attempt=True)
        return "deferred"
    if wait:
        metrics.waited("notifications", wait)
        time.sleep(wait)
    fences = FenceLine(Notification)
    route = servers.route(current["NOTIFY_POOL"], rate.effective_rate())
    try:
        message = envelope(row, current)
        code, text = _send_through(route, message, fences, row.id, token)
    except smtp.FenceClosed:
        return "taken-over"  # a recovery gave the row to someone else: its new owner sends it
    except SmtpFailure as failure:
        return record_failure(row, token, failure)
    except ValueError as exc:  # a value the message cannot carry
        finish(row.id, token, N.FAILED, None, f"Could not build the message: {exc}")
        return "failed"
    finally:
        fences.close()
    finish(row.id, token, N.SENT, code, text)
    return "sent"


def _send_through(route: pools.Route, message: mime.Envelope, fences: FenceLine, notification_id: int,
                  token: str) -> tuple[int, str]:
    """Send through the pool's servers in turn: one that cannot be reached (the message never
    got near its final dot) is marked down and the next one tried. Raises the last SmtpFailure.

    The lane's own NOTIFY_RATE is its limit: notifications take no slot in the servers'
    buckets, so campaigns can never starve them.
    """
    failure: SmtpFailure | None = None
    for server in route.in_turn():
        try:
            with metrics.SMTP_ROUND.labels("notification").time():
                return smtp.connection(server.smtp).send(message, fence=fences.fence(notification_id, token))
        except SmtpFailure as refused:
            if not refused.unreachable:
                if refused.kind == Kind.THROTTLED:
                    route.throttled(server)  # that server slows down for the campaigns too
                raise
            route.failed(server, refused.message)
            failure = refused
    if failure is None:  # nothing to try
        why = ("Every server of the notification pool is marked down: " + "; ".join(route.down.values())
               if route.servers else "The notification pool has no enabled sending server.")
        failure = SmtpFailure(Kind.TRANSIENT, None, why, unreachable=True)
    raise failure


def record_failure(row: Claimed, token: str, failure: SmtpFailure) -> str:
    """Retry later (transient, throttled, server unreachable, our login refused) or fail (5xx, attempts used)."""
    # Nothing the recipient did: the server was down or refused our credentials. No attempt is spent.
    ours = failure.unreachable or failure.kind == Kind.AUTH
    if ours:
        retry_at = utcnow() + timedelta(seconds=retry_delay(1))
        finish(row.id, token, N.QUEUED, failure.code, failure.message, retry_at, undo_attempt=True)
        return "retry"
    if failure.kind in (Kind.TRANSIENT, Kind.THROTTLED) and row.attempts < settings.get("SEND_MAX_ATTEMPTS"):
        retry_at = utcnow() + timedelta(seconds=retry_delay(row.attempts))
        finish(row.id, token, N.QUEUED, failure.code, failure.message, retry_at)
        return "retry"
    finish(row.id, token, N.FAILED, failure.code, failure.message)
    return "failed"


# Recovery (beat) ------------------------------------------------------------------------------

def claims_in_flight() -> list[str]:
    """The distinct claims of notifications in `sending` or `committing` (the sweeper checks their leases)."""
    claims = db.session.scalars(select(Notification.claim).distinct().where(
        Notification.status.in_([N.SENDING, N.COMMITTING]), Notification.claim.is_not(None))).all()
    db.session.commit()
    return [c for c in claims if c]


def recover_stale(claim_timeout: float, now: datetime | None = None,
                  dead_claims: Sequence[str] = ()) -> dict[str, int]:
    """Claims whose worker vanished, as `delivery.ledger.recover_stale` does for campaigns.

    - committing too long, or its worker's lease expired (`dead_claims`): the final dot had
      been handed to the server -> sent (assumed);
    - sending too long, or the same: the message never reached its final dot -> queued, due now.
    """
    now = now or utcnow()
    cut = now - timedelta(seconds=claim_timeout)
    stale = or_(Notification.updated_at < cut, Notification.claim.in_(list(dead_claims)))
    assumed = db.session.scalars(
        update(Notification).where(Notification.status == N.COMMITTING, stale)
        .values(status=N.SENT, sent_at=now, updated_at=now,
                smtp_message="Assumed delivered: the worker stopped after handing the message to the SMTP server.")
        .returning(Notification.id).execution_options(**_NO_SYNC)).all()
    for notification_id in assumed:
        _emit("notification.sent", _fresh(notification_id))
    reclaimed = db.session.scalars(
        update(Notification).where(Notification.status == N.SENDING, stale)
        .values(status=N.QUEUED, claim=None, next_attempt_at=now, updated_at=now)
        .returning(Notification.id).execution_options(**_NO_SYNC)).all()
    db.session.commit()
    metrics.recovered("notifications", {"assumed_sent": len(assumed), "reclaimed": len(reclaimed)})
    return {"assumed_sent": len(assumed), "reclaimed": len(reclaimed)}


def sweep(publish: Callable[[int], Any]) -> dict[str, int]:
    """Recover claims of vanished workers, then `publish` each due retry and lost message (beat).

    Services never enqueue: the caller passes what puts a notification id on the broker.
    """
    config = current_app.config
    recovered = recover_stale(config["SEND_CLAIM_TIMEOUT"], dead_claims=leases.dead_claims(claims_in_flight()))
    due = take_due(config["SEND_QUEUED_TIMEOUT"])
    for notification_id in due:  # each committed by take_due before it is published
        publish(notification_id)
    return {**recovered, "published": len(due)}


def take_due(queued_timeout: float, limit: int = 1000, now: datetime | None = None) -> list[int]:
    """Queued rows to publish again: retries whose time has come, and messages the broker lost.

    A queued row with `next_attempt_at` waits for a retry; without it, it was published at
    `updated_at`. Taking a row clears `next_attempt_at` and stamps `updated_at`, so each due
    row is published once per timeout, and a duplicate message finds nothing to claim.
    """
    now = now or utcnow()
    lost_cut = now - timedelta(seconds=queued_timeout)
    due = dialect.skip_locked(select(Notification.id).where(Notification.status == N.QUEUED, or_(
        Notification.next_attempt_at <= now,
        (Notification.next_attempt_at.is_(None)) & (Notification.updated_at < lost_cut),
    )).order_by(Notification.id).limit(limit))
    ids = db.session.scalars(
        update(Notification).where(Notification.id.in_(due.scalar_subquery()), Notification.status == N.QUEUED)
        .values(next_attempt_at=None, updated_at=now).returning(Notification.id)
        .execution_options(**_NO_SYNC)).all()
    db.session.commit()
    return sorted(ids)
