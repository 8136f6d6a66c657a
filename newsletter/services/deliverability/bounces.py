"""The bounce and complaint rules: every source (the bounce mailbox, provider webhooks, the
API) turns what it received into a `BounceReport` and calls `record`, which acts on it once.

- hard bounce: the subscriber's status becomes `bounced` and the address is suppressed at once;
- soft bounce: counted; the address is suppressed (status `bounced`) when the subscriber has
  BOUNCE_SOFT_LIMIT soft bounces (default 3) within their last BOUNCE_SOFT_DELIVERIES
  deliveries (default 5) or the last BOUNCE_SOFT_DAYS days (default 30), each message counted once;
- complaint: status `complained`, unsubscribed from every list, suppressed.

A campaign's `bounced` and `complained` totals count each delivery once, however many reports
it draws: the delivery's row is locked while its report is recorded. A report carrying an
`event_id` its source already sent is a duplicate and changes nothing, so a mailbox re-read
after a crash or a provider's retry is harmless.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import (
    Bounce,
    BounceType,
    Campaign,
    Delivery,
    Notification,
    Subscriber,
    SubscriberStatus,
    SubscriptionStatus,
    Suppression,
    SuppressionReason,
)
from ...models.base import utcnow
from ...models.subscriber import ERASED_DOMAIN
from .. import settings
from ..addresses import normalize_email
from ..audience import suppressions
from ..errors import NotFound
from ..webhooks import webhooks

SOURCES = ("mailbox", "api", "ses", "sendgrid", "mailgun", "postmark")
BLOCKED = (SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED)


@dataclass(frozen=True)
class BounceReport:
    type: BounceType
    source: str                          # one of SOURCES
    email: str = ""                      # the recipient that bounced, if known
    delivery_id: int | None = None       # a campaign delivery (VERP, our headers, provider metadata)
    notification_id: int | None = None   # a notification or other one-off mail
    status_code: str = ""                # enhanced "5.1.1" if known, else the SMTP reply "550"
    diagnostic: str = ""                 # the remote server's words
    event_id: str = ""                   # the source's own id of this report: a repeat is a no-op
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class RecordResult:
    status: str        # "recorded" | "duplicate" | "unmatched"
    bounce_id: int | None = None
    action: str = "none"  # "suppressed" | "counted" | "complained" | "none"


@dataclass
class _Target:
    email: str
    subscriber: Subscriber | None
    campaign_id: int | None = None
    delivery_id: int | None = None
    notification_id: int | None = None
    # In a batch: the suppressions of the batch's addresses, None where there is none yet.
    held: dict[str, Suppression | None] | None = None


def _subscriber_by_email(email: str) -> Subscriber | None:
    return db.session.scalars(select(Subscriber).where(Subscriber.email == email)).first() if email else None


def _target(report: BounceReport) -> _Target | None:
    """What the report is about, with the delivery's row locked; None if its ids match nothing."""
    email = (report.email or "").strip().lower()
    if report.delivery_id is not None:
        delivery = db.session.scalars(select(Delivery).where(Delivery.id == report.delivery_id)
                                      .with_for_update()).first()
        if delivery is None:
            return None
        subscriber = db.session.get(Subscriber, delivery.subscriber_id) if delivery.subscriber_id else None
        return _Target(delivery.email, subscriber, delivery.campaign_id, delivery.id)
    if report.notification_id is not None:
        notification = db.session.get(Notification, report.notification_id)
        if notification is None:
            return None
        subscriber = (db.session.get(Subscriber, notification.subscriber_id) if notification.subscriber_id
                      else _subscriber_by_email(notification.email))
        return _Target(notification.email, subscriber, notification_id=notification.id)
    if not email:
        return None
    return _Target(email, _subscriber_by_email(email))


def _duplicate(report: BounceReport) -> bool:
    return bool(report.event_id) and db.session.scalar(
        # `event_id <> ''` lets SQLite use the partial unique index (else it scans the table).
        select(Bounce.id).where(Bounce.source == report.source, Bounce.event_id == report.event_id,
                                Bounce.event_id != "")) is not None


def record(report: BounceReport) -> RecordResult:
    """Apply the rules to one report and commit."""
    result = _record(report)
    metrics.BOUNCES.labels(report.type.value, report.source, result.status).inc()
    return result


def _record(report: BounceReport) -> RecordResult:
    if report.source not in SOURCES:
        raise ValueError(f"unknown bounce source {report.source!r}")
    if _duplicate(report):
        return RecordResult("duplicate")
    target = _target(report)
    if target is None:
        db.session.rollback()
        return RecordResult("unmatched")
    bounce = _new_bounce(report, target)
    db.session.add(bounce)
    try:
        db.session.flush()
    except IntegrityError:  # the same event, recorded meanwhile by another process
        db.session.rollback()
        return RecordResult("duplicate")
    _count_on_campaign(bounce)
    action = _apply(bounce, target)
    db.session.commit()
    return RecordResult("recorded", bounce.id, action)


def record_many(reports: Sequence[BounceReport]) -> list[RecordResult]:
    """Apply the rules to several reports in one transaction (the bounce mailbox's batches).

    The same rules and results as `record` for each, in order, with the batch's reads done once
    (duplicates, deliveries locked in id order, their subscribers, suppressions, earlier reports)
    and one commit. If another process records one of these events meanwhile, the whole batch is
    rolled back and each report goes through `record` on its own.
    """
    for report in reports:
        if report.source not in SOURCES:
            raise ValueError(f"unknown bounce source {report.source!r}")
    if len(reports) < 2:
        return [record(report) for report in reports]
    try:
        results = _record_batch(reports)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return [record(report) for report in reports]  # each counted by `record`
    for report, result in zip(reports, results, strict=True):
        metrics.BOUNCES.labels(report.type.value, report.source, result.status).inc()
    return results


def _record_batch(reports: Sequence[BounceReport]) -> list[RecordResult]:
    seen = _recorded_events(reports)
    deliveries, subscribers = _lock_deliveries([r.delivery_id for r in reports if r.delivery_id is not None])
    earlier = _earlier_kinds(list(deliveries))
    held = _suppressions([d.email for d in deliveries.values()])
    pending: list[tuple[Bounce, str]] = []
    increments: Counter[tuple[int, str]] = Counter()
    results: list[RecordResult | None] = []
    with db.session.no_autoflush:  # one flush for the batch; the soft rule flushes what it must count
        for report in reports:
            key = (report.source, report.event_id)
            if report.event_id and key in seen:
                results.append(RecordResult("duplicate"))
                continue
            target = _cached_target(report, deliveries, subscribers, held)
            if target is None:
                results.append(RecordResult("unmatched"))
                continue
            seen.add(key)
            bounce = _new_bounce(report, target)
            db.session.add(bounce)
            if bounce.campaign_id is not None and bounce.delivery_id is not None:
                kind = _kind(bounce.type)
                if kind not in earlier.setdefault(bounce.delivery_id, set()):
                    earlier[bounce.delivery_id].add(kind)
                    increments[(bounce.campaign_id, kind)] += 1
            if bounce.type == BounceType.SOFT:
                db.session.flush()  # the rule counts the batch's earlier soft bounces too
            pending.append((bounce, _apply(bounce, target)))
            results.append(None)
    db.session.flush()
    for (campaign_id, kind), n in sorted(increments.items()):  # after the deliveries: the lock order of `record`
        column = Campaign.complained if kind == "complained" else Campaign.bounced
        db.session.execute(update(Campaign).where(Campaign.id == campaign_id)
                           .values({column.key: column + n}).execution_options(synchronize_session=False))
    done = iter(pending)
    return [result or RecordResult("recorded", *_id_and_action(next(done))) for result in results]


def _id_and_action(item: tuple[Bounce, str]) -> tuple[int, str]:
    return item[0].id, item[1]


def _recorded_events(reports: Sequence[BounceReport]) -> set[tuple[str, str]]:
    ids = sorted({r.event_id[:200] for r in reports if r.event_id})
    if not ids:
        return set()
    rows = db.session.execute(select(Bounce.source, Bounce.event_id).where(Bounce.event_id.in_(ids),
                                                                           Bounce.event_id != ""))
    return {(source, event_id) for source, event_id in rows}


def _lock_deliveries(ids: list[int]) -> tuple[dict[int, Delivery], dict[int, Subscriber]]:
    """The reports' deliveries, locked in id order (two pollers never wait on each other in a
    circle), and their subscribers."""
    if not ids:
        return {}, {}
    rows = db.session.scalars(select(Delivery).where(Delivery.id.in_(sorted(set(ids))))
                              .order_by(Delivery.id).with_for_update()).all()
    subscriber_ids = sorted({row.subscriber_id for row in rows if row.subscriber_id})
    subscribers = db.session.scalars(select(Subscriber).where(Subscriber.id.in_(subscriber_ids))).all()
    return {row.id: row for row in rows}, {row.id: row for row in subscribers}


def _earlier_kinds(delivery_ids: list[int]) -> dict[int, set[str]]:
    """For each delivery, the kinds (bounced, complained) of reports already recorded for it."""
    found: dict[int, set[str]] = {}
    if delivery_ids:
        rows = db.session.execute(select(Bounce.delivery_id, Bounce.type).where(Bounce.delivery_id.in_(delivery_ids)))
        for delivery_id, kind in rows:
            if delivery_id is not None:
                found.setdefault(delivery_id, set()).add(_kind(kind))
    return found


def _suppressions(emails: list[str]) -> dict[str, Suppression | None]:
    """The suppressions of these addresses, read once: None for each address without one."""
    held: dict[str, Suppression | None] = dict.fromkeys(emails)
    if emails:
        held.update((row.email, row) for row in db.session.scalars(
            select(Suppression).where(Suppression.email.in_(sorted(held)))))
    return held


def _cached_target(report: BounceReport, deliveries: dict[int, Delivery], subscribers: dict[int, Subscriber],
                   held: dict[str, Suppression | None]) -> _Target | None:
    if report.delivery_id is None:
        return _target(report)
    delivery = deliveries.get(report.delivery_id)
    if delivery is None:
        return None
    subscriber = subscribers.get(delivery.subscriber_id) if delivery.subscriber_id else None
    return _Target(delivery.email, subscriber, delivery.campaign_id, delivery.id, held=held)


def _suppress(target: _Target, reason: SuppressionReason, note: str) -> Suppression:
    """suppressions.suppress, without a read per address inside a batch."""
    if target.held is None or target.email not in target.held:
        return suppressions.suppress(target.email, reason, note=note)
    row = target.held[target.email]
    if row is None:
        row = target.held[target.email] = Suppression(email=target.email, reason=reason, note=note[:500])
        db.session.add(row)
    return row


def _kind(bounce_type: BounceType) -> str:
    return "complained" if bounce_type == BounceType.COMPLAINT else "bounced"


def _new_bounce(report: BounceReport, target: _Target) -> Bounce:
    return Bounce(type=report.type, source=report.source, email=target.email[:254],
                  subscriber_id=target.subscriber.id if target.subscriber else None,
                  campaign_id=target.campaign_id, delivery_id=target.delivery_id,
                  notification_id=target.notification_id, status_code=report.status_code.strip()[:16],
                  diagnostic=" ".join(report.diagnostic.split())[:500], event_id=report.event_id[:200],
                  occurred_at=report.occurred_at)


def _count_on_campaign(bounce: Bounce) -> None:
    """+1 on the campaign's bounced or complained total, if this is the delivery's first such report."""
    if bounce.campaign_id is None or bounce.delivery_id is None:
        return
    same_kind = [BounceType.COMPLAINT] if bounce.type == BounceType.COMPLAINT else [BounceType.HARD, BounceType.SOFT]
    earlier = db.session.scalar(select(Bounce.id).where(Bounce.delivery_id == bounce.delivery_id,
                                                        Bounce.type.in_(same_kind), Bounce.id != bounce.id).limit(1))
    if earlier is not None:
        return
    column = Campaign.complained if bounce.type == BounceType.COMPLAINT else Campaign.bounced
    db.session.execute(update(Campaign).where(Campaign.id == bounce.campaign_id)
                       .values({column.key: column + 1}).execution_options(synchronize_session=False))


def _apply(bounce: Bounce, target: _Target) -> str:
    if target.email.endswith(ERASED_DOMAIN):  # the person is gone; nothing to suppress
        return "none"
    if bounce.type == BounceType.COMPLAINT:
        _complained(target)
        return "complained"
    if bounce.type == BounceType.HARD:
        _bounced(target, SuppressionReason.HARD_BOUNCE, f"{bounce.status_code} {bounce.diagnostic}".strip())
        return "suppressed"
    if _soft_limit_reached(bounce, target):
        _bounced(target, SuppressionReason.SOFT_BOUNCES, f"{rule()[0]} soft bounces, last: "
                                                         f"{bounce.status_code} {bounce.diagnostic}".strip())
        return "suppressed"
    return "counted"


def rule() -> tuple[int, int, int]:
    """(limit, last N deliveries, days) of the soft-bounce rule."""
    return settings.get("BOUNCE_SOFT_LIMIT"), settings.get("BOUNCE_SOFT_DELIVERIES"), settings.get("BOUNCE_SOFT_DAYS")


def _soft_limit_reached(bounce: Bounce, target: _Target) -> bool:
    limit, last_deliveries, days = rule()
    whose = (Bounce.subscriber_id == target.subscriber.id) if target.subscriber else (Bounce.email == target.email)
    window = [Bounce.created_at >= utcnow() - timedelta(days=days)]
    if target.subscriber is not None:
        recent = db.session.scalars(select(Delivery.id).where(Delivery.subscriber_id == target.subscriber.id)
                                    .order_by(Delivery.id.desc()).limit(last_deliveries)).all()
        if recent:
            window.append(Bounce.delivery_id.in_(recent))
    rows = db.session.execute(select(Bounce.id, Bounce.delivery_id, Bounce.notification_id)
                              .where(whose, Bounce.type == BounceType.SOFT, or_(*window))
                              .order_by(Bounce.id.desc()).limit(limit * 20)).all()
    # Each message once: several delay notices for one delivery are one soft bounce.
    messages = {("d", d) if d is not None else ("n", n) if n is not None else ("b", i) for i, d, n in rows}
    return len(messages) >= limit


def _bounced(target: _Target, reason: SuppressionReason, note: str) -> None:
    _suppress(target, reason, note)
    subscriber = target.subscriber
    if subscriber is not None and subscriber.status not in BLOCKED:
        subscriber.status = SubscriberStatus.BOUNCED
        webhooks.emit_subscriber("subscriber.bounced", subscriber, reason=reason.value)


def _complained(target: _Target) -> None:
    row = _suppress(target, SuppressionReason.COMPLAINT, "complaint (feedback report)")
    row.reason = SuppressionReason.COMPLAINT  # worse than any earlier reason: keep this one
    subscriber = target.subscriber
    if subscriber is None:
        return
    left = []
    for subscription in subscriber.subscriptions:
        if subscription.status != SubscriptionStatus.UNSUBSCRIBED:
            subscription.status = SubscriptionStatus.UNSUBSCRIBED
            left.append(subscription.list_id)
    if subscriber.status != SubscriberStatus.COMPLAINED:
        subscriber.status = SubscriberStatus.COMPLAINED
        webhooks.emit_subscriber("subscriber.complained", subscriber, list_ids=left)


def counts_by_type(campaign_id: int) -> dict[str, int]:
    """Reports per type for one campaign (every report, not once per delivery)."""
    rows = db.session.execute(select(Bounce.type, func.count()).where(Bounce.campaign_id == campaign_id)
                              .group_by(Bounce.type)).all()
    found = {kind.value: n for kind, n in rows}
    return {kind.value: found.get(kind.value, 0) for kind in BounceType}


def for_subscriber(subscriber_id: int, limit: int = 20) -> list[Bounce]:
    """A subscriber's latest reports, newest first (their page in the admin)."""
    return list(db.session.scalars(select(Bounce).where(Bounce.subscriber_id == subscriber_id)
                                   .order_by(Bounce.id.desc()).limit(limit)))


def for_deliveries(delivery_ids: list[int]) -> dict[int, Bounce]:
    """The latest report for each of these deliveries (for the deliveries API and pages)."""
    if not delivery_ids:
        return {}
    rows = db.session.scalars(select(Bounce).where(Bounce.delivery_id.in_(delivery_ids)).order_by(Bounce.id)).all()
    return {row.delivery_id: row for row in rows if row.delivery_id is not None}


def report_from_api(body: dict) -> tuple[Bounce | None, RecordResult]:
    """`POST /api/v1/bounces`: a report from the operator's own systems (already validated for
    shape); refuses an unknown delivery or notification with NotFound naming it."""
    email = normalize_email(body["email"]) if body.get("email") else ""
    report = BounceReport(type=BounceType(body["type"]), source="api", email=email,
                          delivery_id=body.get("delivery_id"), notification_id=body.get("notification_id"),
                          status_code=body.get("status_code") or "", diagnostic=body.get("reason") or "",
                          event_id=body.get("event_id") or "", occurred_at=body.get("occurred_at"))
    result = record(report)
    if result.status == "unmatched":
        if report.delivery_id is not None:
            raise NotFound("delivery", report.delivery_id)
        raise NotFound("notification", report.notification_id)
    if result.status == "duplicate":
        existing = db.session.scalars(select(Bounce).where(Bounce.source == "api",
                                                           Bounce.event_id == report.event_id)).first()
        return existing, result
    return db.session.get(Bounce, result.bounce_id), result


def recent(limit: int, before_id: int | None = None, type: str | None = None, campaign_id: int | None = None,
           domain: str | None = None) -> list[Bounce]:
    """Reports newest first, optionally of one type, campaign or recipient domain."""
    query = select(Bounce).order_by(Bounce.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Bounce.id < before_id)
    if type:
        query = query.where(Bounce.type == BounceType(type))
    if campaign_id is not None:
        query = query.where(Bounce.campaign_id == campaign_id)
    if domain:
        query = query.where(Bounce.email.like(f"%@{domain.lower()}"))
    return list(db.session.scalars(query))
