"""The webhook outbox's moves: claim due rows, POST them signed, record, retry, recover; the log.

Delivery is at least once: a row is claimed with a token (conditional UPDATE) before its
POST, and only that claim can record the answer; a worker killed mid-POST leaves a row in
`sending` that goes back to `pending` later. Receivers deduplicate on the payload's `id`.
"""
from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, func, select, update

from ..extensions import db
from ..models import Webhook, WebhookDelivery, WebhookDeliveryStatus
from ..models.base import utcnow
from . import webhooks
from .errors import NotFound

S = WebhookDeliveryStatus
BATCH = 50          # rows one run claims
CONCURRENCY = 8     # POSTs in flight per run (network waits, not CPU)
RESPONSE_KEEP = 1000
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
    """One POST's result; `ok` means a 2xx answer."""
    id: int
    attempts: int
    ok: bool
    code: int | None = None
    body: str = ""
    error: str = ""


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
    return len(moved)


def claim_due(token: str, limit: int = BATCH) -> list[Claimed]:
    """pending -> sending for up to `limit` due rows of active endpoints; oldest due first."""
    now = utcnow()
    due = (select(WebhookDelivery.id).where(
        WebhookDelivery.status == S.PENDING, WebhookDelivery.next_attempt_at <= now,
        WebhookDelivery.webhook_id.in_(select(Webhook.id).where(Webhook.active)))
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    rows = db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.id.in_(due.scalar_subquery()),
                                      WebhookDelivery.status == S.PENDING)
        .values(status=S.SENDING, claim=token, attempts=WebhookDelivery.attempts + 1, updated_at=now)
        .returning(WebhookDelivery.id, WebhookDelivery.webhook_id, WebhookDelivery.event,
                   WebhookDelivery.payload, WebhookDelivery.attempts)
        .execution_options(**_NO_SYNC)).all()
    db.session.commit()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a 2xx: it fails the attempt (and cannot bounce the POST elsewhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: str, headers: dict[str, str], timeout: float) -> tuple[int | None, str, str]:
    """POST `body`; returns (status code, response text, error). Never raises."""
    request = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "newsletter-webhooks/1", **headers})
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.read(4 * RESPONSE_KEEP).decode("utf-8", "replace"), ""
    except urllib.error.HTTPError as exc:
        text = exc.read(4 * RESPONSE_KEEP).decode("utf-8", "replace") if exc.fp else ""
        return exc.code, text, f"HTTP {exc.code} {exc.reason}"
    except Exception as exc:  # noqa: BLE001  (timeouts, refused connections, TLS, bad hosts)
        reason = getattr(exc, "reason", exc)
        return None, "", f"{type(exc).__name__}: {reason}"


def _send(claimed: list[Claimed]) -> list[Attempt]:
    endpoints = {w.id: (w.url, webhooks.secret_for(w)) for w in db.session.scalars(
        select(Webhook).where(Webhook.id.in_({c.webhook_id for c in claimed})))}
    db.session.commit()
    timeout = current_app.config["WEBHOOK_TIMEOUT"]

    def one(row: Claimed) -> Attempt:
        url, secret = endpoints[row.webhook_id]
        headers = {webhooks.SIGNATURE_HEADER: webhooks.signature(secret, row.payload, int(time.time())),
                   webhooks.EVENT_HEADER: row.event, webhooks.DELIVERY_HEADER: str(row.id)}
        code, body, error = post(url, row.payload, headers, timeout)
        ok = code is not None and 200 <= code < 300
        return Attempt(row.id, row.attempts, ok, code, body[:RESPONSE_KEEP], "" if ok else error[:500])

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
        status = S.DELIVERED if r.ok else (S.FAILED if r.attempts >= limit else S.PENDING)
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


def deliver_due(limit: int = BATCH) -> dict[str, int]:
    """One poll: recover abandoned rows, then claim, POST and record one batch."""
    recovered = recover_stale()
    token = uuid.uuid4().hex
    claimed = claim_due(token, limit)
    results = _send(claimed) if claimed else []
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
        counts = dict(db.session.execute(select(last.c.status, func.count()).group_by(last.c.status)).all())
        delivered = counts.get(S.DELIVERED, 0)
        rates[webhook_id] = (delivered, delivered + counts.get(S.FAILED, 0))
    return rates
