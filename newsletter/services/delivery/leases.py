"""Liveness leases: one per worker process, so the sweeper can tell a dead claimer from a slow one.

A process that sends takes a lease: a Redis key `newsletter:lease:<id>` with a TTL
(LEASE_TTL, 10 s), renewed every LEASE_RENEW_INTERVAL (2 s) by a heartbeat thread — one
Redis call every few seconds per process, never one per message. Every claim token the
process makes starts with the lease id (`<lease>:<batch>`), so the ledger's `claim` column
names the claimant's lease. The sweeper (every SWEEP_INTERVAL) looks up the leases of the
claims in flight; the rows of a lease whose key is gone get the claim-timeout treatment at
once (`ledger.recover_stale`): `sending` -> pending (sent again), `committing` -> sent
(assumed delivered, never sent again). The old SEND_CLAIM_TIMEOUT rule stays as the fallback
(claims without a lease, a sweeper that cannot reach Redis). A dead process is recovered
within LEASE_TTL + SWEEP_INTERVAL of its last renewal.

Why this never sends a message twice, whatever the leases say:

1. Exactly-once rests on the database, not on the lease. A message is handed over only
   after its row moved `sending` -> `committing` under the batch's claim (`fences`). A
   recovery changes the claim (`sending` -> pending, claim cleared) or the status
   (`committing` -> sent), so a recovered row can never pass the old claimant's fence: the
   old claimant skips it (smtp.FenceClosed). A fence in progress holds the row's lock; the
   sweeper's UPDATE waits for it and then sees `committing` (not recovered for sending
   again) or `sending` (the fence rolled back: nothing was handed over).
2. So a lease that expires wrongly (a live worker cut off from Redis, Redis restarted
   without its keys) costs work, never a duplicate: the live worker's unsent rows go to
   another worker and its own fences refuse them; its `committing` rows are assumed sent and
   its `record` then writes the server's real answer over that.
3. A lost lease is never revived: renewals are `SET ... XX` (only while the key exists), so a
   worker that reconnects after its key expired takes a new lease for its next claims
   instead of vouching again for rows the sweeper may already have handed on.
4. Self-fencing: a process whose last successful renewal is older than LEASE_TTL / 2 starts
   no new SMTP transaction (`Lease.fresh`, checked before every round of messages); its batch
   hands the rest back. The renewal's time is taken before the call, so the key outlives it
   by at least LEASE_TTL: anything started while fresh has LEASE_TTL / 2 of lease ahead.
   That bounds the one window the fence cannot close — a fence whose COMMIT is lost with the
   database link while the message still reaches the SMTP server (PIPELINE.md's crash
   window) — to transactions started while the lease was fresh; a worker cut off from Redis
   stops sending within LEASE_TTL / 2 instead of working for rows the sweeper takes back.

A delivery row is claimed at its fence, not before (`fences`, claiming): until then a batch's
rows are still to send (fresh `pending` or `queued`) and name no worker. So a batch registers
the ids it is about to read under its lease (`register`: a Redis set
`newsletter:lease-rows:<lease id>`, one pipelined round trip a batch, removed again at its
end); the sweeper hands the unsent rows of a lease that expired back to the publisher at once
(`registered_rows`, `ledger.recover_stale`), and never takes a live lease's rows for lost. A
registry that cannot be written costs time, never a message: those rows wait for
SEND_QUEUED_TIMEOUT (or the broker's redelivery) like a lost broker message's.

A slow but live worker keeps its rows: its heartbeat runs on its own thread, so a server
that takes minutes to answer DATA delays the batch, not the renewals.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable

import redis
from flask import current_app

PREFIX = "newsletter:lease:"
ROWS = "newsletter:lease-rows:"  # + lease id: the delivery ids its batches are sending (a set)
REGISTRY = "newsletter:lease-rows"  # the lease ids that registered rows
SEPARATOR = ":"  # claim token = <lease id>:<batch id>, at most 40 characters (deliveries.claim)
log = logging.getLogger(__name__)


class LeaseUnavailable(RuntimeError):
    """This process cannot hold a lease now (Redis unreachable): it must not claim rows."""


class Lease:
    """One process's lease; `fresh()` is the self-fence, `renew()` the heartbeat's call."""

    def __init__(self, client: redis.Redis, ttl: float, renew_every: float) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.key = PREFIX + self.id
        self.client, self.ttl, self.renew_every = client, ttl, renew_every
        self.renewed_at = float("-inf")  # time.monotonic() taken before the last successful SET
        self.lost = False
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        started = time.monotonic()
        if not self.client.set(self.key, os.getpid(), nx=True, px=int(self.ttl * 1000)):
            raise LeaseUnavailable(f"lease {self.id} already taken")  # 48 random bits: never in practice
        self.renewed_at = started

    def renew(self) -> bool:
        """Extend the key if it still exists; a key that expired stays dead (the lease is lost)."""
        started = time.monotonic()
        try:
            renewed = self.client.set(self.key, os.getpid(), xx=True, px=int(self.ttl * 1000))
        except redis.RedisError as exc:
            log.warning("lease %s: renewal failed: %s", self.id, exc)
            return False
        if not renewed:
            self.lost = True
            log.warning("lease %s expired before its renewal: its claims are the sweeper's now", self.id)
            return False
        self.renewed_at = started
        return True

    def fresh(self) -> bool:
        """May this process start an SMTP transaction under this lease? (No Redis call.)"""
        return not self.lost and time.monotonic() - self.renewed_at < self.ttl / 2

    def token(self) -> str:
        """A new claim token under this lease (one per batch run)."""
        return f"{self.id}{SEPARATOR}{uuid.uuid4().hex[:24]}"

    def start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.id}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self.lost:
            time.sleep(self.renew_every)
            self.renew()


_lock = threading.Lock()
_held: dict[int, Lease] = {}  # by pid: a forked pool child never uses its parent's lease


def current() -> Lease:
    """This process's lease, taken (with its heartbeat) on first use or after it was lost.

    Raises LeaseUnavailable when it is neither fresh nor renewable now: claim nothing then.
    """
    pid = os.getpid()
    with _lock:
        lease = _held.get(pid)
        if lease is not None and not lease.fresh() and not lease.lost:
            lease.renew()  # the heartbeat may just be late; try once, here
        if lease is None or lease.lost:
            lease = _take()
            _held.clear()
            _held[pid] = lease
        if not lease.fresh():
            raise LeaseUnavailable(f"lease {lease.id} not renewed for {time.monotonic() - lease.renewed_at:.1f} s")
        return lease


def _take() -> Lease:
    config = current_app.config
    ttl, every = config["LEASE_TTL"], config["LEASE_RENEW_INTERVAL"]
    timeout = max(0.2, min(every, 2.0))  # a renewal never blocks past the next one
    client = redis.Redis.from_url(config["REDIS_URL"], socket_timeout=timeout, socket_connect_timeout=timeout)
    lease = Lease(client, ttl, every)
    try:
        lease.acquire()
    except redis.RedisError as exc:
        raise LeaseUnavailable(f"cannot take a lease: {exc}") from exc
    lease.start_heartbeat()
    return lease


def lease_of(claim: str | None) -> str | None:
    """The lease id in a claim token, or None for a token made without one."""
    if not claim or SEPARATOR not in claim:
        return None
    return claim.split(SEPARATOR, 1)[0]


def dead_claims(claims: Iterable[str]) -> list[str]:
    """The claims whose lease key is gone (one pipelined EXISTS per distinct lease).

    Redis unreachable: none (the claim timeout still recovers them); a claim without a lease:
    never dead here, for the same reason.
    """
    by_lease: dict[str, list[str]] = {}
    for claim in claims:
        lease = lease_of(claim)
        if lease is not None:
            by_lease.setdefault(lease, []).append(claim)
    if not by_lease:
        return []
    client = _sweeper_client()
    try:
        pipe = client.pipeline(transaction=False)
        for lease in by_lease:
            pipe.exists(PREFIX + lease)
        alive = pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot read the workers' leases (claim timeout only this round): %s", exc)
        return []
    return [claim for (lease, found), is_alive in zip(by_lease.items(), alive, strict=True) if not is_alive
            for claim in found]


_clients: dict[tuple[int, str], redis.Redis] = {}


def _sweeper_client() -> redis.Redis:
    url = current_app.config["REDIS_URL"]
    slot = (os.getpid(), url)
    if slot not in _clients:
        _clients[slot] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[slot]


def register(lease: Lease, ids: Iterable[int]) -> None:
    """Note `ids` under `lease` before a batch reads them (one round trip). Never raises: without
    it a dead worker's unfenced rows wait for SEND_QUEUED_TIMEOUT instead of the next sweep."""
    ids = list(ids)
    if not ids:
        return
    key = ROWS + lease.id
    try:
        pipe = lease.client.pipeline(transaction=False)
        pipe.sadd(key, *ids)
        pipe.expire(key, int(current_app.config["SEND_QUEUED_TIMEOUT"]) + 1)  # then that timeout covers them
        pipe.sadd(REGISTRY, lease.id)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("lease %s: cannot register %d rows (SEND_QUEUED_TIMEOUT recovers them): %s",
                    lease.id, len(ids), exc)


def unregister(lease: Lease, ids: Iterable[int]) -> None:
    """The batch is over: its rows are recorded (or handed back), nobody needs to recover them."""
    ids = list(ids)
    if not ids:
        return
    try:
        lease.client.srem(ROWS + lease.id, *ids)
    except redis.RedisError as exc:
        log.warning("lease %s: cannot unregister %d rows: %s", lease.id, len(ids), exc)


def registered_rows() -> tuple[dict[str, list[int]], set[int]]:
    """(the registered rows of every lease whose key is gone, by lease id; the rows of the live
    ones), in two round trips.

    Redis unreachable: none (SEND_QUEUED_TIMEOUT still recovers them). Only rows still to send
    are moved (`ledger.recover_stale`); the others were fenced, recorded or handed back.
    """
    client = _sweeper_client()
    try:
        registered = [m.decode() if isinstance(m, bytes) else str(m) for m in client.smembers(REGISTRY)]
        if not registered:
            return {}, set()
        pipe = client.pipeline(transaction=False)
        for lease in registered:
            pipe.exists(PREFIX + lease)
            pipe.smembers(ROWS + lease)
        found = pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot read the leases' rows (queued timeout only this round): %s", exc)
        return {}, set()
    dead: dict[str, list[int]] = {}
    live: set[int] = set()
    for lease, alive, members in zip(registered, found[::2], found[1::2], strict=True):
        if alive:
            live.update(int(i) for i in members)
        else:
            dead[lease] = sorted(int(i) for i in members)
    return dead, live


def forget(lease_ids: Iterable[str]) -> None:
    """Drop dead leases' registrations once the sweep that recovered their rows has committed."""
    lease_ids = list(lease_ids)
    if not lease_ids:
        return
    try:
        pipe = _sweeper_client().pipeline(transaction=False)
        pipe.delete(*(ROWS + lease for lease in lease_ids))
        pipe.srem(REGISTRY, *lease_ids)
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("cannot forget %d dead leases' rows (the next sweep will): %s", len(lease_ids), exc)
