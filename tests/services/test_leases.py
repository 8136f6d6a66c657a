"""Worker liveness leases (services/delivery/leases.py) against the session's real Redis and database."""
from __future__ import annotations

import time

import pytest
import redis
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.models.base import utcnow
from newsletter.models.delivery_attempt import DeliveryAttempt
from newsletter.services.campaigns import recipients
from newsletter.services.delivery import leases
from newsletter.services.delivery import ledger as deliveries
from tests.pipeline.conftest import ctx, make_audience, make_campaign  # noqa: F401  (ctx: a fixture)

D = DeliveryStatus


@pytest.fixture
def client(ctx):  # noqa: F811
    return redis.Redis.from_url(ctx.config["REDIS_URL"])


def test_a_process_holds_one_lease_and_its_tokens_name_it(ctx, client):  # noqa: F811
    lease = leases.current()
    assert leases.current() is lease
    token = lease.token()
    assert len(token) <= 40  # deliveries.claim is VARCHAR(40)
    assert leases.lease_of(token) == lease.id and leases.lease_of(lease.token()) == lease.id
    assert lease.token() != token
    assert 0 < client.pttl(lease.key) <= ctx.config["LEASE_TTL"] * 1000
    assert leases.lease_of("0123456789abcdef0123456789abcdef") is None  # a token from before leases


def test_an_expired_lease_is_never_revived(ctx, client):  # noqa: F811
    lease = leases.current()
    client.delete(lease.key)  # what expiry does
    assert lease.renew() is False and lease.lost and not lease.fresh()
    assert not client.exists(lease.key)  # the renewal did not bring it back
    successor = leases.current()
    assert successor.id != lease.id and successor.fresh() and client.exists(successor.key)


def test_a_lease_not_renewed_for_half_its_ttl_fences_its_process_off(ctx, client):  # noqa: F811
    lease = leases.Lease(client, ttl=10, renew_every=2)
    lease.acquire()
    assert lease.fresh()
    lease.renewed_at -= 5.01  # the last good renewal, half a TTL ago (the key itself still lives)
    assert client.exists(lease.key) and not lease.fresh()
    assert lease.renew() and lease.fresh()
    client.delete(lease.key)


def test_the_heartbeat_keeps_a_lease_alive_past_its_ttl(ctx, client):  # noqa: F811
    lease = leases.Lease(client, ttl=1.5, renew_every=0.2)
    lease.acquire()
    lease.start_heartbeat()
    time.sleep(4)  # well past the TTL: only renewals keep the key
    assert client.exists(lease.key) and lease.fresh()
    lease.lost = True  # stops the heartbeat
    client.delete(lease.key)


def test_dead_claims_are_those_whose_lease_key_is_gone(ctx, client):  # noqa: F811
    live = leases.current()
    gone = leases.Lease(client, ttl=10, renew_every=2)
    gone.acquire()
    claims = [live.token(), gone.token(), gone.token(), "0123456789abcdef0123456789abcdef"]
    assert leases.dead_claims(claims) == []
    client.delete(gone.key)
    assert sorted(leases.dead_claims(claims)) == sorted(claims[1:3])


def _rows(n: int) -> tuple[int, list[int]]:
    list_id, _ = make_audience(n, prefix=f"lease{time.monotonic_ns()}")
    campaign_id = make_campaign([list_id])
    recipients.snapshot(campaign_id)
    # Paused: its rows count as in flight, and the session's sweeper publishes nothing of it.
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=CampaignStatus.PAUSED))
    ids = list(db.session.scalars(select(Delivery.id).where(Delivery.campaign_id == campaign_id)
                                  .order_by(Delivery.id)))
    return campaign_id, ids


def _set(ids: list[int], status: DeliveryStatus, claim: str) -> None:
    db.session.execute(update(Delivery).where(Delivery.id.in_(ids)).values(status=status, claim=claim))
    db.session.commit()


def test_the_rows_of_a_dead_lease_are_recovered_at_once_and_a_live_ones_never(ctx, client):  # noqa: F811
    _, ids = _rows(4)
    live = leases.current()
    dead = leases.Lease(client, ttl=10, renew_every=2)
    dead.acquire()
    dead_token, live_token = dead.token(), live.token()
    _set(ids[0:1], D.SENDING, dead_token)
    _set(ids[1:2], D.COMMITTING, dead_token)
    _set(ids[2:3], D.SENDING, live_token)
    _set(ids[3:4], D.COMMITTING, live_token)
    client.delete(dead.key)

    in_flight = deliveries.claims_in_flight()
    # (A sweeper of the session's workers may run meanwhile and recover them the same way.)
    assert {live_token} <= set(in_flight) <= {dead_token, live_token}
    assert leases.dead_claims(in_flight) in ([dead_token], [])
    # Rows just updated: the claim timeout (an hour here, 10 s for the session's sweeper) cannot move them.
    counts = deliveries.recover_stale(3600, 3600, dead_claims=leases.dead_claims(in_flight))
    assert (counts["reclaimed"], counts["assumed_sent"]) == (0, 0)
    status = dict(db.session.execute(select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids))).all())
    assert [status[i] for i in ids] == [D.PENDING, D.SENT, D.SENDING, D.COMMITTING]
    notes = db.session.scalars(select(DeliveryAttempt.smtp_message).where(
        DeliveryAttempt.delivery_id.in_(ids[:2])).order_by(DeliveryAttempt.delivery_id)).all()
    assert len(notes) == 2 and all("lease expired" in note for note in notes)
    # The old claimant's fence now refuses the row it had not yet handed over.
    from newsletter.services.delivery.fences import FenceLine

    line = FenceLine()
    try:
        assert line.fence(ids[0], dead_token).acquire() is False
        db.session.rollback()
    finally:
        line.close()


def test_the_queued_rows_a_dead_lease_registered_go_back_at_once_and_a_live_ones_stay(ctx, client):  # noqa: F811
    """A batch's rows are claimed at their fence; until then only its lease's registration says
    whose they are. A dead lease's still-queued rows go back to pending (published again), a
    fenced one is its claim's business, a live lease's stay; the registration is then dropped."""
    _, ids = _rows(4)
    live = leases.current()
    dead = leases.Lease(client, ttl=10, renew_every=2)
    dead.acquire()
    _set(ids, D.QUEUED, None)
    # Fenced before the worker died, and still under a live claim here: the claim's business, not this rule's.
    db.session.execute(update(Delivery).where(Delivery.id == ids[1]).values(
        status=D.COMMITTING, claim=live.token(), updated_at=utcnow()))
    db.session.commit()
    leases.register(dead, ids[:2])
    leases.register(live, ids[2:])
    orphans, live_rows = leases.registered_rows()
    assert dead.id not in orphans and set(ids) <= live_rows  # alive: nothing to recover
    client.delete(dead.key)
    # (A sweeper of the session's workers may run meanwhile and recover them the same way.)
    orphans, live_rows = leases.registered_rows()
    assert live.id not in orphans and set(ids[2:]) <= live_rows and orphans.get(dead.id) in (ids[:2], None)
    counts = deliveries.recover_stale(3600, 3600, dead_claims=[], orphaned=orphans.get(dead.id, []))
    leases.forget(orphans)
    assert counts["lease_republished"] in (1, 0) and counts["republished"] == 0
    status = dict(db.session.execute(select(Delivery.id, Delivery.status).where(Delivery.id.in_(ids))).all())
    assert [status[i] for i in ids] == [D.PENDING, D.COMMITTING, D.QUEUED, D.QUEUED]
    notes = db.session.scalars(select(DeliveryAttempt.smtp_message).where(DeliveryAttempt.delivery_id == ids[0])).all()
    assert len(notes) == 1 and "lease expired" in notes[0]
    assert not client.exists(leases.ROWS + dead.id) and not client.sismember(leases.REGISTRY, dead.id)
    assert set(ids[2:]) <= {int(i) for i in client.smembers(leases.ROWS + live.id)}
    leases.unregister(live, ids[2:])


def test_notifications_of_a_dead_lease_are_recovered_at_once_too(ctx, client):  # noqa: F811
    from newsletter.models import Notification
    from newsletter.services.notifications import notifications

    live = leases.current()
    dead = leases.Lease(client, ttl=10, renew_every=2)
    dead.acquire()
    rows = [Notification(email=f"{n}@example.com", subject="s", text="t", status=status, claim=token)
            for n, (status, token) in enumerate([("sending", dead.token()), ("committing", dead.token()),
                                                 ("sending", live.token()), ("committing", live.token())])]
    db.session.add_all(rows)
    db.session.commit()
    ids = [row.id for row in rows]
    client.delete(dead.key)
    # Just claimed: only the lease can move them before the claim timeout (an hour here).
    notifications.recover_stale(3600, dead_claims=leases.dead_claims(notifications.claims_in_flight()))
    db.session.rollback()
    status = dict(db.session.execute(
        select(Notification.id, Notification.status).where(Notification.id.in_(ids))).all())
    assert [status[i].value for i in ids] == ["queued", "sent", "sending", "committing"]


def test_a_sweep_does_not_wait_on_rows_a_vanished_transaction_still_locks(ctx, client):  # noqa: F811
    """A worker host cut off mid-write leaves its backend holding row locks until PostgreSQL
    notices the dead client: the sweep gives up after LOCK_WAIT and the next one recovers them."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite locks the whole file)")
    _, ids = _rows(2)
    dead = leases.Lease(client, ttl=10, renew_every=2)
    dead.acquire()
    token = dead.token()
    _set(ids, D.SENDING, token)
    client.delete(dead.key)
    with db.engine.connect() as stranded:  # the vanished worker's transaction, still open
        stranded.execute(select(Delivery.id).where(Delivery.id == ids[0]).with_for_update())
        # Waiting on would hang here for good: the lock is released only below.
        assert deliveries.recover_stale(3600, 3600, dead_claims=[token]) == {"locked": 1}
        stranded.rollback()  # PostgreSQL ends it once it notices the client is gone
    deliveries.recover_stale(3600, 3600, dead_claims=[token])  # (or the session's own sweeper did)
    db.session.expire_all()
    assert set(db.session.scalars(select(Delivery.status).where(Delivery.id.in_(ids)))) == {D.PENDING}
