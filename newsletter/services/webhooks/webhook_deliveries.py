"""The webhook outbox's moves: claim due rows, POST them signed, record, retry, recover; the log.

Delivery is at least once: a row is claimed with a token (conditional UPDATE) before its
POST, and only that claim can record the answer; a worker killed mid-POST leaves a row in
`sending` that goes back to `pending` later. Receivers deduplicate on the payload's `id`.
"""
from __future__ import annotations

import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, func, select, update

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import Webhook, WebhookDelivery, WebhookDeliveryStatus, dialect
from ...models.base import utcnow
from ..errors import NotFound
from . import webhook_http, webhooks

S = WebhookDeliveryStatus
BATCH = 50          # rows one run claims
CONCURRENCY = 8     # POSTs in flight per run (network waits, not CPU)
_NO_SYNC = {"synchronize_session": False}


@dataclass(frozen=True)
class Claimed:
    id: int
    webhook_id: int
    event: str
    payload: str
    attempts: int


@dataclass
class Attempt:
    """One POST's result; `ok` means a 2xx answer, `final` a failure retrying cannot fix."""
    id: int
    attempts: int
    ok: bool
    code: int | None = None
    body: str = ""
    error: str = ""
    final: bool = False


def stale_after() -> float:
    """How long a row may stay `sending` before its worker counts as gone: far beyond a run."""
    return 3 * (BATCH / CONCURRENCY + 1) * current_app.config["WEBHOOK_TIMEOUT"] + 30


def recover_stale(now: datetime | None = None) -> int:
    now = now or utcnow()
    cut = now - timedelta(seconds=stale_after())
    moved = db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.status == S.SENDING, WebhookDelivery.updated_at < cut)
        .values(status=S.PENDING, claim=None, next_attempt_at=now, updated_at=now,
                error="The worker stopped during the attempt; sending again.")
        .returning(WebhookDelivery.id).execution_options(**_NO_SYNC)).all()
    db.session.commit()
    metrics.recovered("webhooks", {"reclaimed": len(moved)})
    return len(moved)


def claim_due(token: str, limit: int = BATCH) -> list[Claimed]:
    """pending -> sending for up to `limit` due rows of active endpoints; oldest due first."""
    now = utcnow()
    due = dialect.skip_locked(select(WebhookDelivery.id).where(
        WebhookDelivery.status == S.PENDING, WebhookDelivery.next_attempt_at <= now,
        WebhookDelivery.webhook_id.in_(select(Webhook.id).where(Webhook.active)))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
    rows = db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(due.scalar_subquery()),
                                      WebhookDelivery.status == S.PENDING)
        .values(status=S.SENDING, claim=token, attempts=WebhookDelivery.attempts + 1, updated_at=now)
        .returning(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.event,
                   WebhookDelivery.payload, WebhookDelivery.attempts)
        .execution_options(**_NO_SYNC)).all()
    db.session.commit()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def send(claimed: list[Claimed]) -> list[Attempt]:
    """POST each claimed row, signed, to its endpoint (webhook_http: vetted addresses only)."""
    endpoints = {w.id: (w.url, webhooks.secret_for(w)) for w in db.session.scalars(
        select(Webhook).where(Webhook.id.in_({c.webhook_id for c in claimed})))}
    db.session.commit()
    timeout, allowed = current_app.config["WEBHOOK_TIMEOUT"], webhooks.allowed_networks()

    def one(row: Claimed) -> Attempt:
        url, secret = endpoints[row.webhook_id]
        headers = {webhooks.SIGNATURE_HEADER: webhooks.signature(secret, row.payload, int(time.time())),
                   webhooks.EVENT_HEADER: row.event, webhooks.DELIVERY_HEADER: str(row.id)}
        reply = webhook_http.post(url, row.payload, headers, timeout, allowed)
        ok = reply.code is not None and 200 <= reply.code < 300
        return Attempt(row.id, row.attempts, ok, reply.code, reply.excerpt, "" if ok else reply.error[:500],
                       final=reply.refused)

    with ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(claimed))) as pool:
        return list(pool.map(one, claimed))


def retry_delay(attempts: int) -> float:
    """Exponential backoff, WEBHOOK_RETRY_BASE * 2^(attempts-1), jittered by ±25%."""
    base = current_app.config["WEBHOOK_RETRY_BASE"] * 2 ** (attempts - 1)
    return base * random.uniform(0.75, 1.25)


def record(results: list[Attempt], token: str) -> None:
    """Write the answers, only onto rows this claim still owns."""
    now, limit = utcnow(), current_app.config["WEBHOOK_MAX_ATTEMPTS"]
    rows = []
    for r in results:
        status = S.DELIVERED if r.ok else (S.FAILED if r.final or r.attempts >= limit else S.PENDING)
        rows.append({"b_id": r.id, "b_status": status.value, "b_code": r.code, "b_body": r.body, "b_error": r.error,
                     "b_next": None if status != S.PENDING else now + timedelta(seconds=retry_delay(r.attempts)),
                     "b_delivered": now if r.ok else None})
    if not rows:
        return
    table = WebhookDelivery.__table__
    db.session.connection().execute(
        table.update().where(table.c.id == bindparam("b_id"), table.c.claim == token,
                             table.c.status == S.SENDING.value)
        .values(status=bindparam("b_status"), response_code=bindparam("b_code"), response_body=bindparam("b_body"),
                error=bindparam("b_error"), next_attempt_at=bindparam("b_next"),
                delivered_at=bindparam("b_delivered"), claim=None, updated_at=now), rows)
    db.session.commit()
    metrics.webhook_outcomes(str(row["b_status"]) for row in rows)


def deliver_due(limit: int = BATCH) -> dict[str, int]:
    """One poll: recover abandoned rows, then claim, POST and record one batch."""
    recovered = recover_stale()
    token = uuid.uuid4().hex
    claimed = claim_due(token, limit)
    results = send(claimed) if claimed else []
    record(results, token)
    return {"recovered": recovered, "claimed": len(claimed), "delivered": sum(r.ok for r in results)}


# The log, replay and test events (admin pages).

def log(webhook_id: int, before: int | None = None, limit: int = 50) -> tuple[list[WebhookDelivery], int | None]:
    """One page of the endpoint's deliveries, newest first; pass the returned cursor for the next."""
    query = (select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
             .order_by(WebhookDelivery.id.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    items = list(db.session.scalars(query))
    return items[:limit], (items[limit - 1].id if len(items) > limit else None)


def get(webhook_id: int, delivery_id: int) -> WebhookDelivery:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound("webhook delivery", delivery_id)
    return delivery


def _pending_copy(webhook_id: int, event: str, payload: str) -> WebhookDelivery:
    now = utcnow()
    delivery = WebhookDelivery(webhook_id=webhook_id, event=event, payload=payload, status=S.PENDING,
                               attempts=0, next_attempt_at=now, created_at=now, updated_at=now)
    db.session.add(delivery)
    db.session.commit()
    return delivery


def replay(webhook_id: int, delivery_id: int) -> WebhookDelivery:
    """A new pending delivery with the very same body (so the same payload `id`, for dedup)."""
    original = get(webhook_id, delivery_id)
    return _pending_copy(webhook_id, original.event, original.payload)


def send_test(webhook_id: int) -> int:
    """Queue a `webhook.test` event for this endpoint, whatever events it subscribes to."""
    webhook = webhooks.get(webhook_id)
    webhooks.write(webhooks.TEST_EVENT, [webhook.id], [{
        "webhook_id": webhook.id, "message": "A test event: your endpoint and signature check work."}])
    db.session.commit()
    return webhook.id


def success_rates(webhook_ids: list[int], recent: int = 100) -> dict[int, tuple[int, int]]:
    """(delivered, finished) over each endpoint's last `recent` finished deliveries."""
    rates = {}
    for webhook_id in webhook_ids:  # few endpoints; each an index range on (webhook_id, id)
        last = (select(WebhookDelivery.status).where(
            WebhookDelivery.webhook_id == webhook_id, WebhookDelivery.status.in_([S.DELIVERED, S.FAILED]))
            .order_by(WebhookDelivery.id.desc()).limit(recent).subquery())
        counts: dict[S, int] = dict(
            db.session.execute(select(last.c.status, func.count()).group_by(last.c.status)).all())
        delivered = counts.get(S.DELIVERED, 0)
        rates[webhook_id] = (delivered, delivered + counts.get(S.FAILED, 0))
    return rates
