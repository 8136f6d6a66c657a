"""Notifications sent in chunks (services/notifications/chunks.py) against the session's real
database, Redis and SMTP server: several sessions side by side, each email once, outcomes per row."""
from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from sqlalchemy import insert, select, update

from newsletter.extensions import db
from newsletter.models import Notification, NotificationKind, NotificationStatus, Subscriber, SubscriberStatus
from newsletter.models.base import utcnow
from newsletter.sending import pools
from newsletter.services import settings
from newsletter.services.automations import runner
from newsletter.services.delivery import leases, servers
from newsletter.services.notifications import chunks, one_off
from tests.pipeline.conftest import ctx  # noqa: F401  (a fixture)
from tests.support.net import free_port, wait_for

N = NotificationStatus


def _queue(tag: str, n: int, status: SubscriberStatus = SubscriberStatus.CONFIRMED) -> tuple[list[int], list[str]]:
    """`n` subscribers and one queued automation email each (committed): (notification ids, addresses)."""
    now = utcnow()
    emails = [f"{tag}{i:03d}@example.net" for i in range(n)]
    db.session.execute(insert(Subscriber), [
        {"email": e, "name": "Chunk", "attributes": {}, "status": status, "created_at": now, "updated_at": now,
         "confirmed_at": now} for e in emails])
    ids = dict(db.session.execute(select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_(emails))).all())
    queued = [one_off.queue(NotificationKind.AUTOMATION, e, f"Hello {e}", "<p>Hi</p>", "Hi", subscriber_id=ids[e],
                            commit=False) for e in emails]
    db.session.commit()
    return queued, emails


def _rows(ids: list[int]) -> list[Notification]:
    db.session.rollback()
    return list(db.session.scalars(select(Notification).where(Notification.id.in_(ids)).order_by(Notification.id)))


def test_a_chunk_larger_than_the_sessions_goes_out_once_each(ctx, smtp_server):  # noqa: F811
    size = ctx.config["SEND_SESSIONS"]
    ids, emails = _queue("chunk", size * 2 + 3)  # three rounds: full, full, three
    outcomes = chunks.send_many(ids, worker="test")
    assert outcomes == {"sent": len(ids)}
    rows = _rows(ids)
    assert {r.status for r in rows} == {N.SENT} and {r.attempts for r in rows} == {1}
    assert all(r.smtp_code == 250 and r.sent_at is not None and r.worker == "test" for r in rows)
    assert {e: len(smtp_server.received.get(e, [])) for e in emails} == {e: 1 for e in emails}
    # A second message for the same rows (a redelivery) finds nothing queued: nothing twice.
    assert chunks.send_many(ids, worker="again") == {"not-claimed": len(ids)}
    assert smtp_server.count() == len(ids)


def test_unwanted_rows_are_cancelled_and_refusals_recorded_per_row(ctx, smtp_server):  # noqa: F811
    ids, emails = _queue("mixed", 6)
    gone, _ = _queue("gone", 1, SubscriberStatus.UNSUBSCRIBED)
    refused, temporary = emails[1], emails[2]
    smtp_server.rule = lambda rcpt, attempt: ("550 5.1.1 No such user" if rcpt == refused else
                                              "451 4.3.0 Try later" if rcpt == temporary else None)
    outcomes = chunks.send_many(ids + gone, worker="test")
    assert outcomes == {"sent": 4, "failed": 1, "retry": 1, "cancelled": 1}
    by_email = {r.email: r for r in _rows(ids + gone)}
    assert by_email[refused].status == N.FAILED and by_email[refused].smtp_code == 550
    assert by_email[temporary].status == N.QUEUED and by_email[temporary].next_attempt_at is not None
    assert by_email["gone000@example.net"].status == N.CANCELLED
    assert "unsubscribed" in by_email["gone000@example.net"].smtp_message
    sent = [e for e in emails if e not in (refused, temporary)]
    assert all(by_email[e].status == N.SENT for e in sent)
    assert {e: len(smtp_server.received.get(e, [])) for e in sent} == {e: 1 for e in sent}


def test_at_the_lane_rate_a_chunk_is_handed_back_unsent(ctx, smtp_server):  # noqa: F811
    settings.save({"NOTIFY_RATE": "1"}, None)  # a round of several would wait longer than MAX_RATE_WAIT
    try:
        ids, _ = _queue("slow", ctx.config["SEND_SESSIONS"] + 1)
        outcomes = chunks.send_many(ids, worker="test")
    finally:
        settings.save({"NOTIFY_RATE": None}, None)
    assert outcomes == {"deferred": len(ids)}
    rows = _rows(ids)
    assert {r.status for r in rows} == {N.QUEUED} and {r.attempts for r in rows} == {0}
    assert all(r.claim is None and r.next_attempt_at > utcnow() - timedelta(seconds=1) for r in rows)
    assert smtp_server.count() == 0


@pytest.fixture
def client(ctx):  # noqa: F811
    return redis.Redis.from_url(ctx.config["REDIS_URL"])


def test_one_automation_run_at_a_time_and_a_dead_runner_is_taken_over(ctx, client):  # noqa: F811
    client.delete(runner.RUN_KEY)
    with runner.one_run_at_a_time(60) as first:
        assert first
        with runner.one_run_at_a_time(60) as second:
            assert not second  # the holder's lease is alive
    assert client.get(runner.RUN_KEY) is None  # released when done
    # A holder whose process died: its lease key is gone, so the next run takes over at once.
    client.set(runner.RUN_KEY, "deadbeefdeadbeef" + leases.SEPARATOR + "0" * 24, px=60_000)
    with runner.one_run_at_a_time(60) as taken:
        assert taken
        assert leases.lease_of(client.get(runner.RUN_KEY).decode()) == leases.current().id



def test_with_the_server_unreachable_a_chunk_waits_for_a_retry_and_then_goes_out_once(ctx, smtp_server):  # noqa: F811
    """No session opens: every row goes through the one-by-one path (the pool's other servers, none
    here), which keeps it queued for a retry, the attempt not counted against the recipient; once the
    server is back each goes out once (through this call, or the session's beat and worker, which may
    publish the due retries first)."""
    ids, emails = _queue("down", ctx.config["SEND_SESSIONS"] + 2)  # a full round and a second one
    settings.save({"MAIL_PORT": str(free_port())}, None)  # nothing listens there: connection refused
    try:
        outcomes = chunks.send_many(ids, worker="test")
        assert smtp_server.count() == 0
    finally:
        settings.save({"MAIL_PORT": None}, None)
        pools.state(ctx.config["REDIS_URL"]).mark_up(servers.builtin())  # found down: not for the next tests
    assert outcomes == {"retry": len(ids)}
    waiting = [r for r in _rows(ids) if r.status == N.QUEUED]
    assert all(r.attempts == 0 and r.claim is None and "Cannot reach the SMTP server" in r.smtp_message
               for r in waiting)
    # The server is back and the retry is due: each goes out once.
    db.session.execute(update(Notification).where(Notification.id.in_(ids), Notification.status == N.QUEUED)
                       .values(next_attempt_at=utcnow()))
    db.session.commit()
    chunks.send_many(ids, worker="test")
    wait_for(lambda: all(smtp_server.received.get(e) for e in emails), 30, message="every address once")
    assert {e: len(smtp_server.received.get(e, [])) for e in emails} == {e: 1 for e in emails}
    wait_for(lambda: {r.status for r in _rows(ids)} == {N.SENT}, 30, message="every row recorded sent")
    assert {r.attempts for r in _rows(ids)} == {1}  # the unreachable try was not counted
