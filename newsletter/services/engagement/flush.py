"""Counting buffered events: Redis list -> batch -> one database transaction (beat, every few seconds).

Exactly once, whoever dies when:
1. A Lua script moves up to BATCH_SIZE events from the events list into a new batch key and leases
   it (a sorted set of batch keys scored by lease expiry), atomically: an event is always in
   the list or in exactly one batch.
2. The batch is aggregated and written in one transaction that also inserts the batch's id
   into `engagement_batches`. A batch whose id is already there was counted: it is only deleted.
3. The batch key is deleted and its lease dropped.
A flusher that dies after 1 leaves a batch whose lease runs out; the next run takes it over
(step 2 then either counts it or finds it counted). Two flushers racing on one batch both try
to insert its id; the primary key lets only one commit.

The `email.opened` / `email.clicked` webhooks are written to the outbox in the transaction of
step 2, so a batch counted once emits once, whoever retried it (and nothing with nobody listening).
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import (
    Campaign,
    CampaignLink,
    EngagementBatch,
    EngagementCount,
    EngagementEvent,
    EngagementKind,
    EngagementUnique,
    EngagementUniqueCount,
    Subscriber,
    Tracking,
    dialect,
)
from ...models.subscriber import ERASED_DOMAIN
from ..webhooks import webhooks
from . import breakdown, counters
from .events import client
from .events import key as redis_key

# Keys (events.key): "events" (the list hits go to), "batches" (a sorted set: batch key -> lease
# expiry, unix time), "batch:<id>" (one batch's events).
BATCH_SIZE = 5000
MAX_BATCHES = 20  # per run: a backlog is worked off over a few runs, never in one long task
WEBHOOK_EVENTS = {EngagementKind.OPEN: "email.opened", EngagementKind.CLICK: "email.clicked"}

_TAKE = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return 0 end
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('ZADD', KEYS[3], ARGV[2], KEYS[2])
return #items
"""
_RECLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, key in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], key) end
return due
"""


def _lease() -> float:
    return float(current_app.config.get("ENGAGEMENT_FLUSH_LEASE", 60))


def _crash_point(name: str) -> None:
    """Tests name a point where this process dies at once (no cleanup), to prove recovery."""
    if current_app.config.get("ENGAGEMENT_FLUSH_CRASH_AT") == name:
        os._exit(70)


def run() -> dict[str, int]:
    """Count what is buffered: batches left by dead flushers first, then new ones."""
    redis_client = client()
    done = {"batches": 0, "events": 0}
    now = time.time()
    for key in redis_client.eval(_RECLAIM, 1, redis_key("batches"), now, now + _lease(), MAX_BATCHES):
        done["events"] += _process(key.decode())
        done["batches"] += 1
    while done["batches"] < MAX_BATCHES:
        key = redis_key(f"batch:{uuid.uuid4().hex}")
        if not redis_client.eval(_TAKE, 3, redis_key("events"), key, redis_key("batches"), BATCH_SIZE,
                                 time.time() + _lease()):
            break
        _crash_point("after_take")
        done["events"] += _process(key)
        done["batches"] += 1
    return done


def _process(key: str) -> int:
    redis_client = client()
    events = [event for event in map(_parsed, redis_client.lrange(key, 0, -1)) if event is not None]
    if events:
        apply(key.rpartition(":")[2], events)
    _crash_point("after_commit")
    pipe = redis_client.pipeline()
    pipe.delete(key)
    pipe.zrem(redis_key("batches"), key)
    pipe.execute()
    return len(events)


def _parsed(item: bytes | str) -> list[Any] | None:
    """An event as `events` wrote it, or None: one malformed item must not block its batch forever."""
    try:
        kind, campaign_id, link_id, subscriber_id, machine, reason, at = json.loads(item)
        return [EngagementKind(kind).value, int(campaign_id), int(link_id), int(subscriber_id), int(machine),
                str(reason), int(at)]
    except (ValueError, TypeError):
        return None


def _hour(at: float) -> datetime:
    return datetime.fromtimestamp(at - at % 3600, UTC)


def apply(batch_id: str, events: list[list[Any]]) -> bool:
    """Count one batch in one transaction; False if it was counted before (nothing changes)."""
    if db.session.get(EngagementBatch, batch_id) is not None:
        db.session.rollback()
        return False
    modes = dict(db.session.execute(select(Campaign.id, Campaign.tracking)
                                    .where(Campaign.id.in_({int(e[1]) for e in events}))).all())
    individual = {campaign_id for campaign_id, mode in modes.items() if mode == Tracking.INDIVIDUAL}
    existing = set(modes)
    events = [e for e in events if int(e[1]) in existing]  # a deleted campaign's late events count nowhere
    people = _people({int(e[3]) for e in events if e[3] and int(e[1]) in individual})

    counts: Counter = Counter()
    rows, uniques = [], set()
    for kind, campaign_id, link_id, subscriber_id, machine, reason, at in events:
        kind = EngagementKind(kind)
        counts[(campaign_id, kind, link_id, bool(machine), _hour(at))] += 1
        if campaign_id not in individual or subscriber_id not in people:
            continue  # anonymous: counts only (and an erased subscriber is anonymous from then on)
        rows.append({"campaign_id": campaign_id, "subscriber_id": subscriber_id, "link_id": link_id or None,
                     "kind": kind, "machine": bool(machine), "reason": reason[:32],
                     "at": datetime.fromtimestamp(at, UTC)})
        if not machine:  # `unique` counts human events only
            uniques.add((campaign_id, kind, 0, subscriber_id))
            if link_id:
                uniques.add((campaign_id, kind, link_id, subscriber_id))

    db.session.add(EngagementBatch(id=batch_id, events=len(events)))
    counters.add(EngagementCount.__table__, ["campaign_id", "kind", "link_id", "machine", "hour"], counts)
    if rows:
        db.session.execute(EngagementEvent.__table__.insert(), rows)
    if uniques:
        _count_uniques(uniques)
    _emit(events, individual, people)
    breakdown.count(events, individual, people)  # per reason and per mail domain, for the report
    try:
        db.session.commit()
    except IntegrityError:  # another flusher counted this batch meanwhile (its lease had run out)
        db.session.rollback()
        return False
    return True


def _people(ids: set[int]) -> dict[int, str]:
    """The subscribers among `ids` that still exist and are not erased, with their addresses."""
    if not ids:
        return {}
    return dict(db.session.execute(select(Subscriber.id, Subscriber.email).where(
        Subscriber.id.in_(ids), ~Subscriber.email.endswith(ERASED_DOMAIN))).all())


def _emit(events: list[list[Any]], individual: set[int], people: dict[int, str]) -> None:
    """email.opened / email.clicked into the webhook outbox, one per event, only if an endpoint listens.

    One read of `webhooks` per batch when nobody does; otherwise one read of the batch's links and
    one INSERT per event name (webhooks.write). Who opened is named only in individual mode.
    """
    wanted = webhooks.listeners(list(WEBHOOK_EVENTS.values()))
    if not wanted:
        return
    link_ids = {int(e[2]) for e in events if e[2]}
    urls = dict(db.session.execute(select(CampaignLink.id, CampaignLink.url).where(CampaignLink.id.in_(link_ids))
                                   ).all()) if link_ids and "email.clicked" in wanted else {}
    items: dict[str, list[dict[str, Any]]] = {name: [] for name in wanted}
    for kind, campaign_id, link_id, subscriber_id, machine, reason, at in events:
        name = WEBHOOK_EVENTS[EngagementKind(kind)]
        if name not in items:
            continue
        data: dict[str, Any] = {"campaign_id": campaign_id, "machine": bool(machine), "reason": reason,
                                "occurred_at": datetime.fromtimestamp(at, UTC)}
        if kind == EngagementKind.CLICK:
            data.update(link_id=link_id, url=urls.get(link_id))
        if campaign_id in individual and subscriber_id in people:
            data.update(subscriber_id=subscriber_id, email=people[subscriber_id])
        items[name].append(data)
    for name, rows in items.items():
        webhooks.write(name, wanted[name], rows)


def _count_uniques(uniques: set[tuple]) -> None:
    """Insert the first-time (campaign, kind, link, subscriber) rows; add the new ones to the counters."""
    statement = dialect.insert(EngagementUnique.__table__).on_conflict_do_nothing().returning(
        EngagementUnique.campaign_id, EngagementUnique.kind, EngagementUnique.link_id)
    new = db.session.execute(statement, [{"campaign_id": c, "kind": k, "link_id": link, "subscriber_id": s}
                                         for c, k, link, s in sorted(uniques, key=str)]).all()
    counters.add(EngagementUniqueCount.__table__, ["campaign_id", "kind", "link_id"],
         Counter((row.campaign_id, row.kind, row.link_id) for row in new))

