"""Notifications in chunks (the automation runner's): sent as campaign batches are, not one by one.

`send_many` claims a chunk in one UPDATE and commit, re-checks it in one query, then sends it in
rounds of up to SEND_SESSIONS messages over this process's SMTP sessions side by side
(smtp.Sessions): each round reserves its NOTIFY_RATE tokens once and is fenced
sending -> committing by ONE update before its final dots (delivery.fences.GroupFence), and the
chunk's outcomes are written in one executemany and commit. One by one, each email cost a claim,
a re-check, a fence and an outcome, three commits and a pool checkout (bench/README.md
"Automation entry"); a chunk of 20 now costs about four commits in all.

Exactly-once is the fence's, as for campaigns and `notifications.send`: a row is sent only after
this claim moved it to `committing`; a process killed before that leaves it `sending` (put back by
the sweeper), after it `committing` (assumed sent). A row the round's server could not be reached
for never got near its fence: it goes through `notifications.deliver`, which tries the pool's
other servers.
"""
from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, or_, update

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import Notification, NotificationKind, NotificationStatus
from ...models.base import utcnow
from ...sending import pools, smtp
from ...sending.errors import Kind, SmtpFailure
from .. import settings
from ..delivery import leases, servers
from ..delivery.fences import FenceLine
from . import notifications, one_off
from .notifications import MAX_RATE_WAIT, Claimed

N = NotificationStatus
Sent = tuple[int, int, str]  # (id, SMTP code, SMTP reply)


def send_many(notification_ids: list[int], worker: str = "") -> dict[str, int]:
    """Send those of the notifications still queued and due; how many had each outcome."""
    lease = leases.current()
    token = lease.token()
    rows = notifications.claim_many(notification_ids, token, worker)
    outcomes: Counter[str] = Counter()
    if len(rows) < len(notification_ids):
        outcomes["not-claimed"] = len(notification_ids) - len(rows)
    rows = _wanted(rows, token, outcomes)
    db.session.commit()  # end the read: no transaction stays open across SMTP I/O
    if not rows:
        return dict(outcomes)
    sent: list[Sent] = []
    fences = FenceLine(Notification)
    try:
        _send_rounds(rows, token, lease, fences, sent, outcomes)
    finally:
        fences.close()
        if sent:  # what went out is recorded even if a later round failed
            db.session.rollback()  # nothing pending (every other outcome committed on its own)
            _record_sent(sent, token)
    if sent:
        outcomes["sent"] += len(sent)
    return dict(outcomes)


def _wanted(rows: list[Claimed], token: str, outcomes: Counter[str]) -> list[Claimed]:
    """The rows still wanted; the others are cancelled (one query for the chunk's subscribers)."""
    reasons = one_off.reasons_to_cancel([(r.kind, r.email, r.subscriber_id, r.data) for r in rows])
    for row, reason in zip(rows, reasons, strict=True):
        if reason:
            notifications.finish(row.id, token, N.CANCELLED, None, reason)
            outcomes["cancelled"] += 1
    return [row for row, reason in zip(rows, reasons, strict=True) if not reason]


def _send_rounds(rows: list[Claimed], token: str, lease: leases.Lease, fences: FenceLine, sent: list[Sent],
                 outcomes: Counter[str]) -> None:
    current = settings.effective()
    rate = notifications.limiter()
    route = servers.route(current["NOTIFY_POOL"], rate.effective_rate())
    size = current_app.config["SEND_SESSIONS"]
    while rows:
        round_rows, rows = rows[:size], rows[size:]
        wait = rate.reserve(len(round_rows), max_wait=MAX_RATE_WAIT)
        if wait is None or not lease.fresh():  # at NOTIFY_RATE, or our lease is stale: hand the rest back
            if wait is None:
                metrics.LIMITER_REFUSALS.labels("notifications").inc()
            _hand_back(round_rows + rows, token, max(1.0, rate.refused_wait) if wait is None else 0.0, outcomes)
            return
        if wait:
            metrics.waited("notifications", wait)
            time.sleep(wait)
        server = next(iter(route.in_turn()), None)
        if server is None:  # every server down: the one-by-one path records why and when to retry
            for row in round_rows:
                outcomes[notifications.deliver(row, token)] += 1
            continue
        unreached = _send_round(round_rows, token, smtp.sessions(server.smtp, size), fences, current, sent,
                                outcomes, route, server)
        for row in unreached:  # never fenced: the pool's next server, one by one
            outcomes[notifications.deliver(row, token)] += 1


def _send_round(rows: list[Claimed], token: str, sessions: smtp.Sessions, fences: FenceLine,
                current: settings.Snapshot, sent: list[Sent], outcomes: Counter[str], route: pools.Route,
                server: pools.Server) -> list[Claimed]:
    """One message per session, fenced together; the rows the server could not be reached for."""
    items, sending = [], []
    for row in rows:
        try:
            items.append((row.id, notifications.envelope(row, current)))
            sending.append(row)
        except ValueError as exc:  # a value the message cannot carry
            notifications.finish(row.id, token, N.FAILED, None, f"Could not build the message: {exc}")
            outcomes["failed"] += 1
    if not items:
        return []
    with metrics.SMTP_ROUND.labels("notification").time():
        results = sessions.send(items, fences.group(token))
    unreached: list[Claimed] = []
    why = ""
    for row, result in zip(sending, results, strict=True):
        if isinstance(result, smtp.FenceClosed):
            outcomes["taken-over"] += 1  # a recovery gave the row to someone else: its new owner sends it
        elif isinstance(result, SmtpFailure) and result.unreachable:
            unreached.append(row)
            why = result.message
        elif isinstance(result, SmtpFailure):
            if result.kind == Kind.THROTTLED:
                route.throttled(server)
            outcomes[notifications.record_failure(row, token, result)] += 1
        elif row.kind == NotificationKind.API:  # its webhook event goes with its outcome
            notifications.finish(row.id, token, N.SENT, result[0], result[1])
            outcomes["sent"] += 1
        else:
            sent.append((row.id, result[0], result[1]))
    if unreached:
        route.failed(server, why)
    return unreached


def _record_sent(sent: list[Sent], token: str) -> None:
    """The chunk's sent rows in one executemany and commit, where this claim still owns them
    (`sent` too: the sweeper may have assumed a slow worker's committing row delivered)."""
    if not sent:
        return
    now = utcnow()
    table = Notification.__table__
    db.session.execute(
        update(table).where(table.c.id == bindparam("b_id"), table.c.claim == token,
                            or_(*(table.c.status == status for status in (N.SENDING, N.COMMITTING, N.SENT))))
        .values(status=N.SENT, smtp_code=bindparam("b_code"), smtp_message=bindparam("b_text"), sent_at=now,
                updated_at=now, next_attempt_at=None),
        [{"b_id": i, "b_code": code, "b_text": (text or "")[:500]} for i, code, text in sent])
    db.session.commit()
    metrics.messages("notification", [(N.SENT.value, False, code) for _, code, _ in sent])


def _hand_back(rows: list[Claimed], token: str, wait: float, outcomes: Counter[str]) -> None:
    """Back to queued, the attempt not counted, due after `wait` s (the sweeper publishes them)."""
    retry_at = utcnow() + timedelta(seconds=wait)
    why = "Waiting for the notification rate limit." if wait else "This worker's lease is stale: handed back unsent."
    for row in rows:
        notifications.finish(row.id, token, N.QUEUED, None, why, retry_at, undo_attempt=True)
    outcomes["deferred"] += len(rows)
