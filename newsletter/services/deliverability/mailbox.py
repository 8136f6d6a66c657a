"""The bounce mailbox (beat, every BOUNCE_POLL_INTERVAL): read what came back to
BOUNCE_MAILBOX_URL, record each bounce or complaint once, and file the message:

- `Processed`: a bounce or complaint matched to a delivery, notification or subscriber, and recorded;
- `Unmatched`: a bounce or complaint that names nobody we sent to (kept for a person to look at);
- `Ignored`: not a bounce at all (auto-replies, vacation notices, challenge-responses, people's replies).

Nothing is ever deleted. Each message is acted on once, even with two pollers or a crash:
a Redis lease per mailbox lets one poller in at a time, and each report carries the message's
Message-ID (else a hash of its bytes) as its event id, so a message re-read after a crash
between recording it and moving it is a duplicate: nothing changes, and it is moved.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC

import redis
from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import BounceType, Subscriber
from . import bounces, dsn, identify, imap, verp
from .bounces import BounceReport
from .verp import Ref

log = logging.getLogger(__name__)

PROCESSED, UNMATCHED, IGNORED = "Processed", "Unmatched", "Ignored"
BATCH_SIZE = 500         # messages per FETCH and per MOVE
POLL_SECONDS = 50.0      # one poll stops taking new batches after this; the next tick goes on
LEASE_SECONDS = 120      # renewed every batch; a dead poller's lease runs out after this
IMAP_TIMEOUT = 30.0
LEASE_PREFIX = "newsletter:bounce-mailbox"

_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_clients: dict[tuple[int, str], redis.Redis] = {}


class Lease:
    """One poller per mailbox at a time: a Redis key with a random token and an expiry."""

    def __init__(self, name: str, seconds: int = LEASE_SECONDS) -> None:
        url = current_app.config["REDIS_URL"]
        slot = (os.getpid(), url)  # a forked worker never shares its parent's connection
        if slot not in _clients:
            _clients[slot] = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=4)
        self.client = _clients[slot]
        self.key = f"{LEASE_PREFIX}:{hashlib.sha256(name.encode()).hexdigest()[:16]}"
        self.token = secrets.token_hex(16)
        self.ms = int(seconds * 1000)

    def acquire(self) -> bool:
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ms))

    def renew(self) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ms))

    def release(self) -> None:
        self.client.eval(_RELEASE, 1, self.key, self.token)


def poll(part: int = 0, parts: int = 1, budget: float = POLL_SECONDS, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Process what is in the mailbox now, in batches, for up to `budget` seconds; returns counts
    per folder (or {"disabled": 1} without BOUNCE_MAILBOX_URL, {"busy": 1} if another poller has it).

    With `parts` > 1 this poller takes only the messages whose UID % parts == part, under a lease
    of its own: BOUNCE_POLL_PARALLEL pollers work one mailbox side by side, each message in one part."""
    raw_url = current_app.config.get("BOUNCE_MAILBOX_URL") or ""
    if not raw_url:
        return {"disabled": 1}
    url = imap.parse_url(raw_url)
    lease = Lease(url.name if parts == 1 else f"{url.name}#{part}/{parts}")
    if not lease.acquire():
        return {"busy": 1}
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + budget
    try:
        box = imap.Mailbox(url, IMAP_TIMEOUT)
        try:
            # Again until empty: bounces keep arriving while a big backlog is worked through.
            while (uids := [u for u in box.uids() if u % parts == part]) and _process_all(
                    box, uids, lease, deadline, batch_size, counts):
                pass
        finally:
            box.close()
    finally:
        lease.release()
    if counts:
        log.info("bounce mailbox %s: %s", url.name, dict(counts))
    return dict(counts)


def _process_all(box: imap.Mailbox, uids: list[int], lease: Lease, deadline: float, batch_size: int,
                 counts: Counter[str]) -> bool:
    """Process `uids` batch by batch; False if stopped early (out of time, or the lease ran out
    under us, so another poller may have started): the next poll goes on from there."""
    for start in range(0, len(uids), batch_size):
        if time.monotonic() >= deadline or not lease.renew():
            return False
        _process_batch(box, uids[start:start + batch_size], counts)
    return True


def _process_batch(box: imap.Mailbox, uids: list[int], counts: Counter[str]) -> None:
    fetched = list(box.fetch(uids))
    moves: dict[str, list[int]] = defaultdict(list)
    for (uid, _raw), folder in zip(fetched, process_many([raw for _uid, raw in fetched]), strict=True):
        counts[folder] += 1
        moves[folder].append(uid)
    # Recorded first, moved after: a crash in between re-reads these, and they are duplicates then.
    for folder, moved in moves.items():
        box.move(moved, folder)


def process(raw: bytes) -> str:
    """Record what one message reports; the folder it belongs in."""
    return process_many([raw])[0]


def process_many(raws: list[bytes]) -> list[str]:
    """Record what each message reports, all in one transaction (bounces.record_many); the
    folder each message belongs in."""
    plans = [_plan(raw) for raw in raws]
    results = iter(bounces.record_many([report for _folder, wanted in plans for report in wanted]))
    folders = []
    for folder, wanted in plans:
        recorded = [next(results) for _report in wanted]
        folders.append(folder or (PROCESSED if any(r.status != "unmatched" for r in recorded) else UNMATCHED))
    return folders


def _plan(raw: bytes) -> tuple[str | None, list[BounceReport]]:
    """(the folder, if known without recording anything; the reports to record)."""
    try:
        parsed = dsn.parse(raw)
    except Exception:  # the parser is meant never to raise; if it does, keep the message for a person
        log.exception("bounce mailbox: cannot parse a message of %d bytes", len(raw))
        return UNMATCHED, []
    if not parsed.is_bounce:
        return IGNORED, []
    ref = find_delivery(parsed)
    # Without our token or headers, a report counts only for an address we know: anyone can
    # mail the bounce address, and a stranger's address is nothing to record.
    wanted = [r for r in reports(parsed, ref) if ref is not None or _known(r.email)]
    return (None if wanted else UNMATCHED), wanted


def _known(email: str) -> bool:
    found = bool(email) and db.session.scalar(
        select(Subscriber.id).where(Subscriber.email == email.strip().lower()).limit(1)) is not None
    db.session.rollback()  # end the read; record() opens its own transaction
    return found


def find_delivery(parsed: dsn.Parsed) -> Ref | None:
    """Our message the report is about: the VERP address it was sent to (signed), else the
    returned message's headers (identify.from_headers)."""
    for address in (*parsed.envelope, *parsed.quoted_addresses):
        if (ref := verp.parse(address)) is not None:
            return ref
    return identify.from_headers(parsed.original) if parsed.original else None


def reports(parsed: dsn.Parsed, ref: Ref | None) -> Iterator[BounceReport]:
    """One report per failed recipient; one only when the delivery is known (we send each
    message to one recipient, so the others are aliases the remote server expanded)."""
    occurred_at = parsed.occurred_at
    if occurred_at is not None and occurred_at.tzinfo is None:
        occurred_at = occurred_at.replace(tzinfo=UTC)
    for index, failure in enumerate(parsed.failures[:1] if ref else parsed.failures):
        yield BounceReport(
            type=BounceType(failure.type), source="mailbox", email=failure.email,
            delivery_id=ref.ident if ref and ref.kind == "d" else None,
            notification_id=ref.ident if ref and ref.kind == "n" else None,
            status_code=failure.status_code, diagnostic=failure.diagnostic,
            event_id=parsed.event_id if index == 0 else f"{parsed.event_id[:190]}#{index}",
            occurred_at=occurred_at)
