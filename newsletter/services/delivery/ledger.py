"""The delivery ledger's moves: publish, claim, record, recover, cancel, requeue; and reads of it.

Every move is one conditional UPDATE (RETURNING the rows it took), so a duplicated task,
a redelivered message or a second sweeper can never take a row another process owns.
The ledger knows rows, not campaign statuses: those are `campaigns.status`'s; the fence
before a message's final dot is `fences`'s.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, literal, or_, select, update
from sqlalchemy.exc import OperationalError

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import Campaign, CampaignStatus, Delivery, DeliveryStatus, dialect
from ...models.base import utcnow
from ...models.delivery import IN_FLIGHT
from ...models.delivery_attempt import DeliveryAttempt
from ..errors import NotFound
from ..webhooks import webhooks

log = logging.getLogger(__name__)

D = DeliveryStatus
_NO_SYNC = {"synchronize_session": False}


def publish(campaign_id: int, limit: int) -> list[int]:
    """Take up to `limit` pending rows whose time has come and mark them queued; ids in order."""
    now = utcnow()
    due = dialect.skip_locked(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == D.PENDING,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now),
    ).order_by(Delivery.id).limit(limit))
    ids = db.session.scalars(
        update(Delivery).where(Delivery.id.in_(due.scalar_subquery()), Delivery.status == D.PENDING)
        .values(status=D.QUEUED, updated_at=now).returning(Delivery.id).execution_options(**_NO_SYNC)).all()
    db.session.commit()
    return sorted(ids)


@dataclass(frozen=True)
class Claimed:
    id: int
    subscriber_id: int | None
    email: str
    attempts: int
    variant: str | None = None  # an A/B test's variant label (its subject, from-name, body)


def claim(ids: Sequence[int], token: str, worker: str) -> list[Claimed]:
    """queued -> sending for the rows still queued; the others belong to someone else."""
    rows = db.session.execute(
        update(Delivery).where(Delivery.id.in_(list(ids)), Delivery.status == D.QUEUED)
        .values(status=D.SENDING, claim=token, worker=worker[:200], attempts=Delivery.attempts + 1,
                updated_at=utcnow())
        .returning(Delivery.id, Delivery.subscriber_id, Delivery.email, Delivery.attempts, Delivery.variant)
        .execution_options(**_NO_SYNC)).all()
    db.session.commit()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


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
    """Write a batch's outcomes, only onto rows this claim still owns, and their attempts.

    `attempts` maps a delivery id to its attempt number (from the claim). Every outcome that
    was not handed back unsent is an attempt, even on a row a recovery has since taken over:
    the send really was tried, so the history keeps it.
    """
    now = utcnow()
    outcomes = list(outcomes)
    rows: list[dict[str, Any]]
    rows = [{"b_id": o.id, "b_status": o.status.value, "b_code": o.smtp_code, "b_msg": (o.smtp_message or "")[:500],
             "b_next": o.retry_at, "b_sent": now if o.status == D.SENT else None,
             "b_claim": None if o.status in (D.PENDING, D.CANCELLED) else token,
             "b_undo": 1 if o.release else 0} for o in outcomes]
    if not rows:
        return
    if dialect.is_postgresql():
        _record_postgres(rows, token, now)
    else:
        table = Delivery.__table__
        db.session.connection().execute(
            # SENT too: the sweeper may have assumed a slow batch's committing row delivered; the
            # batch's own answer from the server is the better record.
            # (ORs, not IN: an expanding IN cannot go through executemany.)
            table.update().where(table.c.id == bindparam("b_id"), table.c.claim == token,
                                 or_(*(table.c.status == s.value for s in (D.SENDING, D.COMMITTING, D.SENT))))
            .values(status=bindparam("b_status"), smtp_code=bindparam("b_code"), smtp_message=bindparam("b_msg"),
                    next_attempt_at=bindparam("b_next"), sent_at=bindparam("b_sent"), claim=bindparam("b_claim"),
                    attempts=table.c.attempts - bindparam("b_undo"), updated_at=now),
            rows)
    _add_attempts([o for o in outcomes if not o.release], attempts or {}, now, worker, task_id)
    # delivery.sent / delivery.failed in the same transaction (nobody listening: one tiny read).
    webhooks.emit_delivery_outcomes([r["b_id"] for r in rows if r["b_status"] in (D.SENT.value, D.FAILED.value)],
                                    token)
    db.session.commit()


# PostgreSQL: a whole batch's outcomes and attempts as one statement each, the values passed
# as arrays (one parameter per column, whatever the batch size). SENT is among the statuses
# overwritten: the sweeper may have assumed a slow batch's committing row delivered, and the
# batch's own answer from the server is the better record.
_RECORD_SQL = (
    "UPDATE deliveries AS d SET status = v.status, smtp_code = v.code, smtp_message = v.msg, "
    "next_attempt_at = v.next_at, sent_at = v.sent_at, claim = v.claim, attempts = d.attempts - v.undo, "
    "updated_at = %(now)s FROM unnest(%(id)s::bigint[], %(status)s::text[], %(code)s::int[], %(msg)s::text[], "
    "%(next_at)s::timestamptz[], %(sent_at)s::timestamptz[], %(claim)s::text[], %(undo)s::int[]) "
    "AS v(id, status, code, msg, next_at, sent_at, claim, undo) "
    "WHERE d.id = v.id AND d.claim = %(token)s AND d.status IN ('sending', 'committing', 'sent')"
)
_ATTEMPTS_SQL = (
    "INSERT INTO delivery_attempts (delivery_id, attempt, status, at, smtp_code, smtp_message, worker, task_id) "
    "SELECT v.id, v.attempt, v.status, %(at)s, v.code, v.msg, %(worker)s, %(task_id)s "
    "FROM unnest(%(id)s::bigint[], %(attempt)s::int[], %(status)s::text[], %(code)s::int[], %(msg)s::text[]) "
    "AS v(id, attempt, status, code, msg)"
)


def _record_postgres(rows: list[dict], token: str, now: datetime) -> None:
    columns = {"id": "b_id", "status": "b_status", "code": "b_code", "msg": "b_msg", "next_at": "b_next",
               "sent_at": "b_sent", "claim": "b_claim", "undo": "b_undo"}
    params: dict[str, Any] = {name: [row[key] for row in rows] for name, key in columns.items()}
    db.session.connection().exec_driver_sql(_RECORD_SQL, {**params, "now": now, "token": token})


def _add_attempts(tried: list[Outcome], numbers: Mapping[int, int], at: datetime, worker: str,
                  task_id: str) -> None:
    """A batch's attempts in one statement (never one per message, never a statement
    compiled afresh per batch: SQLAlchemy's multi-row VALUES cost more CPU than the sends)."""
    if not tried:
        return
    if dialect.is_postgresql():
        db.session.connection().exec_driver_sql(_ATTEMPTS_SQL, {
            "id": [o.id for o in tried], "attempt": [numbers.get(o.id, 0) for o in tried],
            "status": [o.status.value for o in tried], "code": [o.smtp_code for o in tried],
            "msg": [(o.smtp_message or "")[:500] for o in tried], "at": at, "worker": worker[:200],
            "task_id": task_id[:64]})
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
                  dead_claims: Sequence[str] = ()) -> dict[str, int]:
    """Rows whose owner vanished (worker killed, broker message lost) get a next step.

    - committing too long: the final dot had been handed to the server -> sent (assumed);
    - sending too long: the message never reached its final dot -> pending, sent again;
    - queued too long: the broker lost the message -> pending, published again.
    `dead_claims` (claims whose worker's lease expired, `leases.dead_claims`) get the same two
    first moves at once, whatever their age. A stale owner that is merely slow loses its claim
    and cannot pass `fence`.

    A row still locked by a vanished worker's open transaction (a host cut off mid-write, until
    PostgreSQL notices the dead connection: dialect.server_session) makes the sweep give up after
    LOCK_WAIT seconds and try again next time, rather than hold a worker process until then.
    """
    try:
        return _recover_stale(claim_timeout, queued_timeout, now or utcnow(), dead_claims)
    except OperationalError as exc:
        if not dialect.is_lock_timeout(exc):
            raise
        db.session.rollback()
        log.warning("sweep: rows are locked by a transaction that has not ended (a vanished worker?); next sweep")
        return {"locked": 1}


def _recover_stale(claim_timeout: float, queued_timeout: float, now: datetime,
                   dead_claims: Sequence[str]) -> dict[str, int]:
    dialect.wait_for_locks_at_most(LOCK_WAIT)
    claim_cut, queued_cut = now - timedelta(seconds=claim_timeout), now - timedelta(seconds=queued_timeout)
    dead = Delivery.claim.in_(list(dead_claims))
    moves: dict[str, tuple[Any, dict[str, Any], str, str]] = {}
    if dead_claims:  # first: the precise reason, when both apply
        moves["lease_assumed_sent"] = (and_(Delivery.status == D.COMMITTING, dead),
                                       dict(status=D.SENT, sent_at=now, smtp_message=_LEASE_ASSUMED),
                                       "sent", _LEASE_ASSUMED)
        moves["lease_reclaimed"] = (and_(Delivery.status == D.SENDING, dead), dict(status=D.PENDING, claim=None),
                                    "pending", _LEASE_RESEND)
    moves.update({
        "assumed_sent": (and_(Delivery.status == D.COMMITTING, Delivery.updated_at < claim_cut),
                         dict(status=D.SENT, sent_at=now, smtp_message=_ASSUMED), "sent", _ASSUMED),
        "reclaimed": (and_(Delivery.status == D.SENDING, Delivery.updated_at < claim_cut),
                      dict(status=D.PENDING, claim=None), "pending", _RESEND),
        "republished": (and_(Delivery.status == D.QUEUED, Delivery.updated_at < queued_cut),
                        dict(status=D.PENDING), "", ""),
    })
    counts = {"lease_assumed_sent": 0, "lease_reclaimed": 0}
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
    total, after = 0, 0
    while True:
        chunk = dialect.skip_locked(
            select(Delivery.id).where(*unsent, Delivery.id > after).order_by(Delivery.id).limit(CANCEL_CHUNK))
        ids = db.session.scalars(chunk).all()
        if not ids:
            db.session.commit()
            return total
        total += len(db.session.execute(
            update(Delivery).where(Delivery.id.in_(ids), *unsent)
            .values(status=D.CANCELLED, updated_at=utcnow(), claim=None).returning(Delivery.id)
            .execution_options(**_NO_SYNC)).all())
        db.session.commit()
        after = ids[-1]


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
        update(Delivery).where(which).values(status=D.PENDING, attempts=0, claim=None, next_attempt_at=None,
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
    now = utcnow()
    return db.session.scalar(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status == D.PENDING,
        or_(Delivery.next_attempt_at.is_(None), Delivery.next_attempt_at <= now)).limit(1)) is not None


def in_flight(campaign_id: int) -> bool:
    """Anything published and not yet back? (An index probe, not a count.)"""
    return db.session.scalar(select(Delivery.id).where(
        Delivery.campaign_id == campaign_id, Delivery.status.in_(list(IN_FLIGHT))).limit(1)) is not None


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
    query = select(Delivery).where(Delivery.campaign_id == campaign_id).order_by(Delivery.id).limit(limit)
    if status is not None:
        query = query.where(Delivery.status == status)
    if after is not None:
        query = query.where(Delivery.id > after)
    return list(db.session.scalars(query))

