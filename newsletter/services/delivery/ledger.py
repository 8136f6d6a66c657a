"""The delivery ledger's moves: publish, take (a read: the claim is the fence), record, recover, cancel, requeue; reads.

Every move is one conditional UPDATE (RETURNING the rows it took), so a duplicated task,
a redelivered message or a second sweeper can never take a row another process owns.
The ledger knows rows, not campaign statuses: those are `campaigns.status`'s; the fence
before a message's final dot is `fences`'s.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, literal, or_, select, union_all, update
from sqlalchemy.exc import OperationalError

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber, dialect
from ...models.base import utcnow
from ...models.delivery import IN_FLIGHT
from ...models.delivery_attempt import DeliveryAttempt
from ..errors import NotFound
from ..webhooks import webhooks

log = logging.getLogger(__name__)

D = DeliveryStatus
_NO_SYNC = {"synchronize_session": False}

# A fresh row (pending, no next_attempt_at) is published by its campaign's cursor, not by a write:
# at or below `campaigns.published_through` it is on the broker, above it not yet. Every other
# pending row (a retry, a row handed back or recovered, an A/B test's released rest) has a
# next_attempt_at and is published by a write, pending -> queued. So whatever moves a row back
# to pending sets next_attempt_at (now, when it is due at once).
FRESH = and_(Delivery.status == D.PENDING, Delivery.next_attempt_at.is_(None))
SENDABLE = or_(Delivery.status == D.QUEUED, FRESH)  # what a batch reads, and its fence claims
_SENDABLE_SQL = "(d.status = 'queued' OR (d.status = 'pending' AND d.next_attempt_at IS NULL))"  # SENDABLE, on `d`


def publish(campaign_id: int, limit: int) -> list[int]:
    """Up to `limit` rows to publish now, ids in order: due retries (moved to queued), then fresh
    rows past the campaign's cursor (not written: the cursor moves past them, one campaign write)."""
    now = utcnow()
    due = dialect.skip_locked(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == D.PENDING, Delivery.next_attempt_at <= now,
    ).order_by(Delivery.id).limit(limit))
    ids = list(db.session.scalars(
        update(Delivery).where(Delivery.id.in_(due.scalar_subquery()), Delivery.status == D.PENDING)
        .values(status=D.QUEUED, updated_at=now).returning(Delivery.id).execution_options(**_NO_SYNC)).all())
    if len(ids) < limit:
        # The campaign row's lock: two publishers (two windows' callbacks, the sweeper) never take
        # the same fresh rows. Rows are frozen in id order by one process at a time, so a chunk
        # committed later has higher ids than any published already. FOR NO KEY UPDATE, not FOR
        # UPDATE: a snapshot chunk's INSERT holds a KEY SHARE lock on the campaign row (the
        # foreign key) until it commits, which FOR UPDATE waits for and NO KEY UPDATE does not.
        cursor = db.session.scalar(select(Campaign.published_through).where(Campaign.id == campaign_id)
                                   .with_for_update(key_share=True))
        fresh = db.session.scalars(select(Delivery.id).where(
            Delivery.campaign_id == campaign_id, FRESH, Delivery.id > (cursor or 0))
            .order_by(Delivery.id).limit(limit - len(ids))).all()
        if fresh:
            db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
                published_through=fresh[-1], published_at=now,
                updated_at=Campaign.updated_at))  # not an edit: keeps the compiled-template cache key
            ids += fresh
    db.session.commit()
    return sorted(ids)


@dataclass(frozen=True)
class Claimed:
    id: int
    subscriber_id: int | None
    email: str
    attempts: int
    variant: str | None = None  # an A/B test's variant label (its subject, from-name, body)


def take(ids: Sequence[int]) -> list[Claimed]:
    """The rows among `ids` still to send (queued, or fresh: `SENDABLE`), read, not written: a
    batch's claim is its fence (`fences`, -> committing with the batch's token), so a row another
    batch or a recovery takes meanwhile is refused there. `attempts` is the number of the attempt this
    batch makes (the fence counts it)."""
    rows = db.session.execute(
        select(Delivery.id, Delivery.subscriber_id, Delivery.email, Delivery.attempts + 1, Delivery.variant)
        .where(Delivery.id.in_(list(ids)), SENDABLE).order_by(Delivery.id)).all()
    db.session.commit()  # end the read: no transaction stays open across SMTP I/O
    return [Claimed(*row) for row in rows]


Person = tuple[str, dict, int, "str | None"]  # a subscriber's name, attributes, token version, language

# PostgreSQL: the batch's ids as one array parameter (one bind, not one per id: an expanding IN
# of 400 binds cost more client CPU than the rows), the subscribers joined in the same read.
_TAKE_SQL = (
    "SELECT d.id, d.subscriber_id, d.email, d.attempts + 1, d.variant, s.name, s.attributes, s.token_version, "
    "s.language FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id "
    "WHERE d.id = ANY(%(ids)s::bigint[]) AND " + _SENDABLE_SQL + " ORDER BY d.id")


def take_with_people(ids: Sequence[int]) -> tuple[list[Claimed], dict[int, Person]]:
    """`take`, and the name, attributes, token version and language of those rows' subscribers
    (by subscriber id), in one read."""
    if not dialect.is_postgresql():
        claimed = take(ids)
        wanted = [c.subscriber_id for c in claimed if c.subscriber_id is not None]
        rows = db.session.execute(select(Subscriber.id, Subscriber.name, Subscriber.attributes,
                                         Subscriber.token_version, Subscriber.language)
                                  .where(Subscriber.id.in_(wanted))).all()
        db.session.commit()
        return claimed, {row[0]: (row[1], row[2], row[3], row[4]) for row in rows}
    rows = db.session.connection().exec_driver_sql(_TAKE_SQL, {"ids": dialect.bigint_array(ids)}).all()
    db.session.commit()  # end the read: no transaction stays open across SMTP I/O
    people = {row[1]: (row[5], row[6], row[7], row[8]) for row in rows if row[1] is not None and row[5] is not None}
    return [Claimed(row[0], row[1], row[2], row[3], row[4]) for row in rows], people


@dataclass
class Outcome:
    """What happened to one claimed row; written back in bulk by `record`."""
    id: int
    status: DeliveryStatus
    smtp_code: int | None = None
    smtp_message: str = ""
    retry_at: datetime | None = None
    release: bool = False  # handed back unsent (pause, rate limit): the claim's attempt is undone


def record(outcomes: Iterable[Outcome], token: str, attempts: Mapping[int, int] | None = None,
           worker: str = "", task_id: str = "") -> None:
    """Write a batch's outcomes, only onto rows this batch still owns, and their attempts.

    A row is the batch's while it is still to send (`SENDABLE`; never fenced: a refused
    recipient, a message that could not be built, a row handed back; or a fence whose COMMIT
    was lost while its message went out) or fenced under `token`. `attempts` maps a delivery id to
    its attempt number (from `take`). Every outcome that was not handed back unsent is an
    attempt, even on a row a recovery has since taken over: the send really was tried, so
    the history keeps it. A send recorded onto its own row (PostgreSQL) is that row's history
    entry (attempt, time, answer, worker, task: `send_log.detail`), so it writes no attempt row.
    """
    now = utcnow()
    outcomes = list(outcomes)
    if not outcomes:
        return
    recorded: set[int] = set()
    if dialect.is_postgresql():
        recorded = _record_postgres(outcomes, token, now, worker[:200], task_id[:64])
    else:
        rows = [{"b_id": o.id, "b_status": o.status.value, "b_code": o.smtp_code,
                 "b_msg": (o.smtp_message or "")[:500],
                 # back to pending: due when the outcome says, else at once (never fresh again: `FRESH`)
                 "b_next": o.retry_at or (now if o.status == D.PENDING else None),
                 "b_sent": now if o.status == D.SENT else None,
                 "b_claim": None if o.status in (D.PENDING, D.CANCELLED) else token,
                 "b_undo": 1 if o.release else 0} for o in outcomes]
        table = Delivery.__table__
        db.session.connection().execute(
            # SENT too: the sweeper may have assumed a slow batch's committing row delivered; the
            # batch's own answer from the server is the better record.
            # (ORs, not IN: an expanding IN cannot go through executemany.)
            table.update().where(table.c.id == bindparam("b_id"), or_(SENDABLE, and_(
                table.c.claim == token, or_(*(table.c.status == s.value for s in (D.SENDING, D.COMMITTING, D.SENT))))))
            .values(status=bindparam("b_status"), smtp_code=bindparam("b_code"), smtp_message=bindparam("b_msg"),
                    next_attempt_at=bindparam("b_next"), sent_at=bindparam("b_sent"), claim=bindparam("b_claim"),
                    attempts=case((SENDABLE, table.c.attempts + 1), else_=table.c.attempts)
                    - bindparam("b_undo"), updated_at=now, task_id=task_id[:64], worker=worker[:200] or table.c.worker),
            rows)
    _add_attempts([o for o in outcomes if not o.release and not (o.status == D.SENT and o.id in recorded)],
                  attempts or {}, now, worker, task_id)
    # delivery.sent / delivery.failed in the same transaction (nobody listening: one tiny read).
    webhooks.emit_delivery_outcomes([o.id for o in outcomes if o.status in (D.SENT, D.FAILED)], token)
    db.session.commit()


# PostgreSQL: a whole batch's outcomes and attempts as one statement each, the values passed
# as one JSON document (json_to_recordset): one json.dumps in C, where arrays (one parameter per
# column) cost psycopg a Python call per value (~1.1 ms of worker CPU for 70 outcomes, against
# 0.4 ms; PostgreSQL parses the JSON no slower than the arrays). SENT is among the statuses
# overwritten: the sweeper may have assumed a slow batch's committing row delivered, and the
# batch's own answer from the server is the better record. A row still to send was never
# fenced, so its attempt is counted here (the fence counts the others; `sending` is the
# claim of code before claim-at-fence, whose attempt its claim counted).
_RECORD_SQL = (
    "UPDATE deliveries AS d SET status = v.status, smtp_code = v.code, smtp_message = v.msg, "
    "worker = COALESCE(NULLIF(%(worker)s, ''), d.worker), task_id = %(task_id)s, "  # the row is its history entry
    # back to pending: due when the outcome says, else at once (never fresh again: `FRESH`)
    "next_attempt_at = CASE WHEN v.due_now THEN %(now)s ELSE v.next_at END, "
    "sent_at = CASE WHEN v.sent THEN %(now)s END, claim = CASE WHEN v.claimed THEN %(token)s END, "
    "attempts = d.attempts + (CASE WHEN " + _SENDABLE_SQL + " THEN 1 ELSE 0 END) - v.undo, "
    "updated_at = %(now)s FROM json_to_recordset(%(rows)s::json) AS v(id bigint, status text, code int, msg text, "
    "next_at timestamptz, due_now boolean, sent boolean, claimed boolean, undo int) "
    "WHERE d.id = v.id AND (" + _SENDABLE_SQL + " OR (d.claim = %(token)s "
    "AND d.status IN ('sending', 'committing', 'sent'))) RETURNING d.id"
)
_ATTEMPTS_SQL = (
    "INSERT INTO delivery_attempts (delivery_id, attempt, status, at, smtp_code, smtp_message, worker, task_id) "
    "SELECT v.id, v.attempt, v.status, %(at)s, v.code, v.msg, %(worker)s, %(task_id)s "
    "FROM json_to_recordset(%(rows)s::json) AS v(id bigint, attempt int, status text, code int, msg text)"
)


def _json(values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def _record_postgres(outcomes: list[Outcome], token: str, now: datetime, worker: str, task_id: str) -> set[int]:
    """The outcomes as JSON: the batch's time, claim and due-now stand in the statement once, not
    in every row (a row carries flags), so no value needs a Python call to become JSON. The ids of
    the rows written (the others: a recovery has taken them over)."""
    unclaimed = (D.PENDING, D.CANCELLED)
    rows = [{"id": o.id, "status": o.status.value, "code": o.smtp_code, "msg": (o.smtp_message or "")[:500],
             "next_at": o.retry_at.isoformat() if o.retry_at else None,
             "due_now": o.retry_at is None and o.status == D.PENDING, "sent": o.status == D.SENT,
             "claimed": o.status not in unclaimed, "undo": 1 if o.release else 0} for o in outcomes]
    return {row[0] for row in db.session.connection().exec_driver_sql(
        _RECORD_SQL, {"rows": _json(rows), "now": now, "token": token, "worker": worker, "task_id": task_id})}


def _add_attempts(tried: list[Outcome], numbers: Mapping[int, int], at: datetime, worker: str,
                  task_id: str) -> None:
    """A batch's attempts in one statement (never one per message, never a statement
    compiled afresh per batch: SQLAlchemy's multi-row VALUES cost more CPU than the sends)."""
    if not tried:
        return
    if dialect.is_postgresql():
        db.session.connection().exec_driver_sql(_ATTEMPTS_SQL, {
            "rows": _json([{"id": o.id, "attempt": numbers.get(o.id, 0), "status": o.status.value,
                            "code": o.smtp_code, "msg": (o.smtp_message or "")[:500]} for o in tried]),
            "at": at, "worker": worker[:200], "task_id": task_id[:64]})
        return
    db.session.connection().execute(DeliveryAttempt.__table__.insert(), [
        {"delivery_id": o.id, "attempt": numbers.get(o.id, 0), "status": o.status.value, "at": at,
         "smtp_code": o.smtp_code, "smtp_message": (o.smtp_message or "")[:500], "worker": worker[:200],
         "task_id": task_id[:64]} for o in tried])


def _note_attempts(where: Any, status: str, message: str, at: datetime, worker: str) -> None:
    """A row in every matching delivery's history saying what a recovery or a retry did
    (INSERT ... SELECT: one statement however many rows)."""
    columns = ("delivery_id", "attempt", "status", "at", "smtp_message", "worker", "task_id")
    db.session.execute(insert(DeliveryAttempt).from_select(columns, select(
        Delivery.id, Delivery.attempts, literal(status), literal(at, DeliveryAttempt.at.type), literal(message),
        literal(worker), literal("")).where(where)))


_ASSUMED = "Assumed delivered: the worker stopped after handing the message to the SMTP server."
_LEASE_ASSUMED = "Assumed delivered: the worker's lease expired after it handed the message to the SMTP server."
_RESEND = "The worker stopped before the end of the message: sending again."
_LEASE_RESEND = "The worker's lease expired before the end of the message: sending again."
_LEASE_REPUBLISH = "The worker's lease expired before it sent the message: sending again."


def claims_in_flight() -> list[str]:
    """The distinct claims of the rows in `sending` or `committing` (the sweeper checks their leases).

    Read campaign by campaign (the (campaign_id, status) index): drafts, scheduled and sent
    campaigns have no such rows, and the ledger of every campaign ever sent is never scanned.
    """
    live = select(Campaign.id).where(Campaign.status.not_in(
        [CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENT]))
    claims = db.session.scalars(select(Delivery.claim).distinct().where(
        Delivery.campaign_id.in_(live.scalar_subquery()), Delivery.status.in_([D.SENDING, D.COMMITTING]),
        Delivery.claim.is_not(None))).all()
    db.session.commit()
    return [c for c in claims if c]


def recover_stale(claim_timeout: float, queued_timeout: float, now: datetime | None = None,
                  dead_claims: Sequence[str] = (), orphaned: Sequence[int] = (),
                  live: Collection[int] = ()) -> dict[str, int]:
    """Rows whose owner vanished (worker killed, broker message lost) get a next step.

    - committing too long: the final dot had been handed to the server -> sent (assumed);
    - sending too long: the message never reached its final dot -> pending, sent again;
    - queued too long, or fresh rows published by a cursor that has not moved for as long
      (the broker lost the messages, and with them the windows' callbacks) -> pending, due
      now: published again.
    `dead_claims` (claims whose worker's lease expired, `leases.dead_claims`) get the same two
    first moves at once, whatever their age; so do `orphaned` rows (the ids a batch registered
    under a lease that expired, `leases.registered_rows`) still to send: -> pending, published
    again. `live`: rows a live lease registered, which a batch is sending: never "lost". A
    stale owner that is merely slow loses its claim or its row and cannot pass `fence`.
    Every move back to pending sets next_attempt_at (`FRESH`: never fresh again).

    A row still locked by a vanished worker's open transaction (a host cut off mid-write, until
    PostgreSQL notices the dead connection: dialect.server_session) makes the sweep give up after
    LOCK_WAIT seconds and try again next time, rather than hold a worker process until then.
    """
    try:
        return _recover_stale(claim_timeout, queued_timeout, now or utcnow(), dead_claims, orphaned, set(live))
    except OperationalError as exc:
        if not dialect.is_lock_timeout(exc):
            raise
        db.session.rollback()
        log.warning("sweep: rows are locked by a transaction that has not ended (a vanished worker?); next sweep")
        return {"locked": 1}


def _recover_stale(claim_timeout: float, queued_timeout: float, now: datetime,
                   dead_claims: Sequence[str], orphaned: Sequence[int], live: set[int]) -> dict[str, int]:
    dialect.wait_for_locks_at_most(LOCK_WAIT)
    claim_cut, queued_cut = now - timedelta(seconds=claim_timeout), now - timedelta(seconds=queued_timeout)
    dead = Delivery.claim.in_(list(dead_claims))
    again = dict(status=D.PENDING, next_attempt_at=now)  # due at once, published by a write
    moves: dict[str, tuple[Any, dict[str, Any], str, str]] = {}
    if dead_claims:  # first: the precise reason, when both apply
        moves["lease_assumed_sent"] = (and_(Delivery.status == D.COMMITTING, dead),
                                       dict(status=D.SENT, sent_at=now, smtp_message=_LEASE_ASSUMED),
                                       "sent", _LEASE_ASSUMED)
        moves["lease_reclaimed"] = (and_(Delivery.status == D.SENDING, dead), dict(again, claim=None),
                                    "pending", _LEASE_RESEND)
    if orphaned:
        moves["lease_republished"] = (and_(SENDABLE, Delivery.id.in_(list(orphaned))), again,
                                      "pending", _LEASE_REPUBLISH)
    stalled = select(Delivery.id).join(Campaign, Campaign.id == Delivery.campaign_id).where(
        Campaign.status == CampaignStatus.SENDING, Campaign.published_at < queued_cut,
        Delivery.id <= Campaign.published_through, FRESH)
    moves.update({
        "assumed_sent": (and_(Delivery.status == D.COMMITTING, Delivery.updated_at < claim_cut),
                         dict(status=D.SENT, sent_at=now, smtp_message=_ASSUMED), "sent", _ASSUMED),
        "reclaimed": (and_(Delivery.status == D.SENDING, Delivery.updated_at < claim_cut), dict(again, claim=None),
                      "pending", _RESEND),
        "republished": (_not_live(and_(Delivery.status == D.QUEUED, Delivery.updated_at < queued_cut), live),
                        again, "", ""),
        "republished_fresh": (and_(FRESH, Delivery.id.in_([i for i in db.session.scalars(stalled) if i not in live])),
                              again, "", ""),
    })
    counts = {"lease_assumed_sent": 0, "lease_reclaimed": 0, "lease_republished": 0}
    for name, (where, values, note_status, note) in moves.items():
        ids = db.session.scalars(
            update(Delivery).where(where).values(updated_at=now, **values).returning(Delivery.id)
            .execution_options(**_NO_SYNC)).all()
        counts[name] = len(ids)
        if ids and note:
            _note_attempts(Delivery.id.in_(ids), note_status, note, now, "sweeper")
        if ids and note_status == "sent":  # final now: listeners hear of it like any other send
            webhooks.emit_delivery_outcomes(ids, None)
    db.session.commit()
    metrics.recovered("deliveries", counts)
    return counts


def _not_live(where: Any, live: set[int]) -> Any:
    """`where`, less the rows a live lease registered (read first: normally none match `where`)."""
    if not live:
        return where
    return and_(where, Delivery.id.in_([i for i in db.session.scalars(select(Delivery.id).where(where))
                                        if i not in live]))


LOCK_WAIT = 2.0  # seconds a sweep waits for a row lock
CANCEL_CHUNK = 5000


def cancel_unsent(campaign_id: int) -> int:
    """pending/queued -> cancelled, in id-ordered chunks that skip rows another transaction holds.

    One UPDATE over a big campaign would lock its rows in heap order while workers claim and
    publish in id order: PostgreSQL then aborts one side as a deadlock (the user's cancel, say).
    A skipped row is being claimed or published right now; its batch hands it back as cancelled,
    or the sweeper cancels it on its next round (it repeats this for cancelled campaigns).
    """
    unsent = (Delivery.campaign_id == campaign_id, Delivery.status.in_([D.PENDING, D.QUEUED]))
    total = 0
    # One status at a time: each chunk is then an ordered probe of (campaign_id, status, id); an IN
    # on `status` would make PostgreSQL sort every unsent row of the campaign for each chunk.
    for status in (D.PENDING, D.QUEUED):
        after = 0
        while True:
            chunk = dialect.skip_locked(select(Delivery.id).where(
                Delivery.campaign_id == campaign_id, Delivery.status == status, Delivery.id > after)
                .order_by(Delivery.id).limit(CANCEL_CHUNK))
            ids = db.session.scalars(chunk).all()
            if not ids:
                break
            total += len(db.session.execute(
                update(Delivery).where(Delivery.id.in_(ids), *unsent)
                .values(status=D.CANCELLED, updated_at=utcnow(), claim=None).returning(Delivery.id)
                .execution_options(**_NO_SYNC)).all())
            db.session.commit()
            after = ids[-1]
    db.session.commit()
    return total


# Failures a second try can fix: a 4xx, or no code at all (the connection broke) unless the
# message itself could not be built (campaigns.send's "Template error" / "Could not build").
_TRANSIENT_FAILURE = and_(Delivery.status == D.FAILED,
                          or_(Delivery.smtp_code.between(400, 499),
                              and_(Delivery.smtp_code.is_(None), ~Delivery.smtp_message.startswith("Template error"),
                                   ~Delivery.smtp_message.startswith("Could not build"))))
def retryable(campaign_id: int) -> int:
    """How many of the campaign's deliveries `requeue_retryable` would send again."""
    return db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign_id, or_(_TRANSIENT_FAILURE, Delivery.status == D.CANCELLED))) or 0


def requeue_retryable(campaign_id: int, by: str) -> int:
    """Transiently failed and cancelled rows back to pending with a fresh attempt budget, each with
    a note in its history; how many moved. Not committed: the caller moves the campaign with them."""
    now = utcnow()
    which = and_(Delivery.campaign_id == campaign_id, or_(_TRANSIENT_FAILURE, Delivery.status == D.CANCELLED))
    _note_attempts(which, "requeued", "Retry requested: back to pending with a fresh attempt budget.", now,
                   by or "send log")
    return len(db.session.execute(
        update(Delivery).where(which).values(status=D.PENDING, attempts=0, claim=None, next_attempt_at=now,
                                             updated_at=now).returning(Delivery.id)
        .execution_options(**_NO_SYNC)).all())


def counts(campaign_id: int) -> dict[str, int]:
    found = dict(db.session.execute(select(Delivery.status, func.count()).where(Delivery.campaign_id == campaign_id)
                                    .group_by(Delivery.status)).all())
    return {status.value: int(found.get(status, 0)) for status in D}


def unfinished(campaign_id: int) -> bool:
    """Any delivery not yet terminal? (An index probe, not a count.)"""
    found = db.session.scalar(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status.in_([s for s in D if not s.terminal])).limit(1))
    db.session.commit()
    return found is not None


def has_due_pending(campaign_id: int) -> bool:
    """Anything `publish` would take now: a due retry, or a fresh row past the cursor?"""
    now = utcnow()
    cursor = _cursor(campaign_id)
    return db.session.scalar(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == D.PENDING,
        or_(and_(Delivery.next_attempt_at.is_(None), Delivery.id > cursor), Delivery.next_attempt_at <= now))
        .limit(1)) is not None


def in_flight(campaign_id: int) -> bool:
    """Anything published and not yet back? (Index probes, not counts: queued, sending or
    committing rows, or fresh rows at or below the cursor.)"""
    if db.session.scalar(select(Delivery.id).where(
            Delivery.campaign_id == campaign_id, Delivery.status.in_(list(IN_FLIGHT))).limit(1)) is not None:
        return True
    return db.session.scalar(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, FRESH, Delivery.id <= _cursor(campaign_id)).limit(1)) is not None


def _cursor(campaign_id: int) -> int:
    return db.session.scalar(select(Campaign.published_through).where(Campaign.id == campaign_id)) or 0


def for_subscriber(subscriber_id: int, limit: int = 50) -> list[tuple[Delivery, str]]:
    """The newest deliveries to one subscriber, with their campaign's name."""
    return list(db.session.execute(
        select(Delivery, Campaign.name).join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == subscriber_id).order_by(Delivery.id.desc()).limit(limit)).all())


def rate(campaign_id: int, seconds: int = 10) -> float:
    """Messages sent per second over the last `seconds`.

    A row is written when its outcome is, so `updated_at` bounds the scan to the window's rows
    (the campaign/updated_at index) instead of every sent row of the campaign.
    """
    since = utcnow() - timedelta(seconds=seconds)
    sent = db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.campaign_id == campaign_id, Delivery.updated_at >= since, Delivery.status == D.SENT,
        Delivery.sent_at >= since)) or 0
    return sent / seconds


def for_campaign(campaign_id: int, status: DeliveryStatus | None = None, after: int | None = None,
                 limit: int = 50) -> list[Delivery]:
    """Up to `limit` of one campaign's deliveries with ids above `after`, in id order (API pages)."""
    if db.session.get(Campaign, campaign_id) is None:
        raise NotFound("campaign", campaign_id)
    # Each status's first `limit` ids from (campaign_id, status, id), merged: no (campaign_id, id)
    # index (migration 0026), and without a status the planner would sort the whole campaign.
    parts = [select(Delivery.id).where(Delivery.campaign_id == campaign_id, Delivery.status == one,
                                       Delivery.id > (after or 0)).order_by(Delivery.id).limit(limit).subquery()
             for one in ([status] if status is not None else list(D))]
    ids = union_all(*(select(part.c.id) for part in parts)).subquery()
    return list(db.session.scalars(select(Delivery).where(Delivery.id.in_(select(ids.c.id)))
                                   .order_by(Delivery.id).limit(limit)))

