"""Fences: the last move before a message's final dot, on a ledger's rows.

Two ledgers use them: the transactional notifications (claimed first, fenced sending ->
committing under the claim) and the campaigns' deliveries, whose fence is also their claim
(`claiming=True`: queued or fresh -> committing, writing the batch's token, worker and
attempt; one write of the row instead of two). A fence that says no means another batch or a
recovery has the row.
"""
from __future__ import annotations

import select
from typing import Any

from flask import current_app
from sqlalchemy import and_, or_, update

from ...extensions import db
from ...models import Delivery, dialect
from ...models.base import utcnow

_NO_SYNC = {"synchronize_session": False}

# Formatted with the table's name: deliveries, or notifications (same columns, same statuses).
# Prepared once per connection (libpq's own numbered parameters: sent as text, one array of ids).
_FENCE_SQL = ("UPDATE {table} SET status = 'committing', updated_at = $1 "
              "WHERE id = ANY($2::bigint[]) AND claim = $3 AND status = 'sending' RETURNING id")
# The claim at the fence (deliveries): whichever batch fences a queued row first sends it.
# Sendable (ledger.SENDABLE): queued, or fresh (pending, published by its campaign's cursor).
_CLAIMING_SQL = ("UPDATE {table} SET status = 'committing', updated_at = $1, claim = $3, worker = $4, "
                 "attempts = attempts + 1 WHERE id = ANY($2::bigint[]) "
                 "AND (status = 'queued' OR (status = 'pending' AND next_attempt_at IS NULL)) RETURNING id")
_COMMAND_OK, _TUPLES_OK, _PIPELINE_SYNC = 1, 2, 10  # libpq's ExecStatus
_SQLSTATE = ord("C")  # libpq's PG_DIAG_SQLSTATE
_PREPARED = "fence_prepared"  # the pooled connection's `info` key: the statement names prepared on it


class FenceLine:
    """A batch's own database connection for its fences, held from the first message to the last.

    On PostgreSQL every fence is then two writes on the driver connection through libpq's
    pipeline mode (BEGIN + the prepared UPDATE; COMMIT): no pool checkout (and its pre-ping), no
    ORM, no psycopg cursor. SQLite (development) goes through the session.

    `model` is the ledger whose rows are fenced: Delivery (campaigns) or Notification
    (transactional mail); both have id, claim, status ('sending'/'committing') and updated_at.
    `claiming`: the fence takes `queued` rows and claims them for `worker` (deliveries).
    """

    def __init__(self, model: Any = Delivery, claiming: bool = False, worker: str = "") -> None:
        self._pooled: Any = None
        self.model, self.claiming, self.worker = model, claiming, worker[:200]
        self.sql = (_CLAIMING_SQL if claiming else _FENCE_SQL).format(table=model.__tablename__).encode()
        self.statement = f"newsletter_fence_{model.__tablename__}{'_claiming' if claiming else ''}".encode()
        self.unconfirmed: GroupFence | None = None  # a fence whose COMMIT's reply is still to read
        statuses = model.__table__.c.status.type.enum_class
        self.fenced_from, self.committing = statuses("queued" if claiming else "sending"), statuses("committing")

    @property
    def driver(self) -> Any:
        if not dialect.is_postgresql():
            return None
        if self._pooled is None:
            self._pooled = db.engine.raw_connection()
        return self._pooled.driver_connection

    def libpq(self, again: bool = False) -> Any:
        """The connection's libpq handle (psycopg's `pgconn`) with the fence statement prepared on it
        (once per connection, or `again`), or None on SQLite. Ready for a fence: any earlier one confirmed."""
        if self.unconfirmed is not None:
            self.unconfirmed.confirm()
        driver = self.driver
        if driver is None:
            return None
        prepared = self._pooled.info.setdefault(_PREPARED, set())
        if again or self.statement not in prepared:
            result = driver.pgconn.prepare(self.statement, self.sql)  # blocking, outside any transaction
            if result.status != _COMMAND_OK:
                raise RuntimeError((result.error_message or b"").decode("utf-8", "replace"))
            prepared.add(self.statement)
        return driver.pgconn

    def broken(self) -> None:
        """The connection failed mid-fence: never reuse it."""
        self.unconfirmed = None
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            try:
                pooled.invalidate()
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        if self.unconfirmed is not None:
            self.unconfirmed.confirm()  # never raises; leaves the connection out of pipeline mode
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            pooled.close()  # back to the pool, which rolls back anything left open

    def group(self, token: str) -> GroupFence:
        """A fence for the rows of one round of messages (smtp.Sessions), all under `token`."""
        return GroupFence(self, token)

    def fence(self, delivery_id: int, token: str) -> RowFence:
        return RowFence(self, delivery_id, token)


class GroupFence:
    """-> committing around the final dots, with the crash window cut to a few µs.

    `acquire(ids)` moves the rows this claim still owns (uncommitted, so they stay locked)
    and returns their ids. `commit_async` writes COMMIT to PostgreSQL without waiting for the
    reply; the SMTP transport writes the final dots right after and then calls `confirm`. A
    worker killed between those writes is the only case left where the ledger and the SMTP
    server can disagree. Once committed, a message counts as handed over: if the worker dies
    later, the sweeper records it as sent rather than sending it again.

    On PostgreSQL this is libpq's pipeline mode on the line's connection, without psycopg's
    cursor in between: BEGIN and the prepared UPDATE go out in one write (one round trip, where
    psycopg's own BEGIN costs a round trip of its own), then COMMIT and the pipeline's sync in
    another, whose replies `confirm` reads. The moves and their order are the same as a plain
    transaction's: nothing is committed before `commit_async`.
    """

    def __init__(self, line: FenceLine, token: str) -> None:
        self.line, self.token = line, token
        self._pgconn: Any = None

    def acquire(self, ids: list[int]) -> set[int]:
        line = self.line
        pgconn = line.libpq()
        if pgconn is None:
            return self._acquire_session(ids)
        now = utcnow().isoformat().encode()
        array = dialect.bigint_array(ids).encode()
        params = [now, array, self.token.encode(), line.worker.encode()] if line.claiming else \
            [now, array, self.token.encode()]
        try:
            try:
                rows = self._update(pgconn, params)
            except _Unprepared:  # psycopg's DEALLOCATE ALL (after a schema change) took ours too
                _abandon(pgconn)
                pgconn = line.libpq(again=True)
                rows = self._update(pgconn, params)
            owned = {int(rows.get_value(n, 0)) for n in range(rows.ntuples)}
            if not owned:  # nothing to commit: end the transaction and the pipeline
                pgconn.send_query_params(b"ROLLBACK", None)
                pgconn.pipeline_sync()
                _flush(pgconn)
                _expect(pgconn, _COMMAND_OK)
                _expect_sync(pgconn)
                pgconn.exit_pipeline_mode()
        except Exception:
            self.line.broken()
            raise
        return owned

    def _update(self, pgconn: Any, params: list[bytes]) -> Any:
        """BEGIN and the fence's UPDATE in one write; its result (the rows it moved)."""
        pgconn.enter_pipeline_mode()
        pgconn.send_query_params(b"BEGIN", None)
        pgconn.send_query_prepared(self.line.statement, params)
        pgconn.send_flush_request()
        _flush(pgconn)
        _expect(pgconn, _COMMAND_OK)
        return _expect(pgconn, _TUPLES_OK)

    def _acquire_session(self, ids: list[int]) -> set[int]:
        """SQLite (development): the same move through the session."""
        line = self.line
        model = line.model
        values: dict[str, Any] = dict(status=line.committing, updated_at=utcnow())
        where: tuple[Any, ...]
        if line.claiming:
            where = (model.id.in_(ids), or_(model.status == line.fenced_from, and_(
                model.status == line.fenced_from.__class__("pending"), model.next_attempt_at.is_(None))))
            values.update(claim=self.token, worker=line.worker, attempts=model.attempts + 1)
        else:
            where = (model.id.in_(ids), model.claim == self.token, model.status == line.fenced_from)
        owned = set(db.session.scalars(
            update(model).where(*where).values(**values).returning(model.id)
            .execution_options(**_NO_SYNC)).all())
        if not owned:
            db.session.rollback()
        return owned

    def commit_async(self) -> None:
        line = self.line
        if line.driver is None:
            db.session.commit()  # SQLite: a local file, no network reply to overlap with
            return
        pgconn = line.driver.pgconn
        try:
            pgconn.send_query_params(b"COMMIT", None)
            pgconn.pipeline_sync()
            _flush(pgconn)  # written and flushed; the replies are read in confirm()
        except Exception:
            self.line.broken()
            raise
        self._pgconn, line.unconfirmed = pgconn, self

    def confirm(self) -> None:
        """Read the COMMIT's reply. Never raises: the dots are already on their way.

        If the database connection died meanwhile, nobody knows whether that COMMIT landed;
        either way the rows are still ours (`sending`, or `queued` when claiming, or `committing`), and
        the batch's `record` writes `sent` onto them once the server has answered.
        """
        if self._pgconn is None:
            return
        pgconn, self._pgconn = self._pgconn, None
        if self.line.unconfirmed is self:
            self.line.unconfirmed = None
        try:
            _expect(pgconn, _COMMAND_OK)
            _expect_sync(pgconn)
            pgconn.exit_pipeline_mode()
        except Exception as exc:  # noqa: BLE001  (any failure here must not lose the hand-over)
            current_app.logger.warning("claim %s: fence commit unconfirmed: %s", self.token, exc)
            self.line.broken()


def _flush(pgconn: Any) -> None:
    """Write out what libpq holds (psycopg keeps its connections non-blocking)."""
    while pgconn.flush():
        select.select([], [pgconn.socket], [], 1.0)


def _next(pgconn: Any) -> Any:
    """libpq's next result, waited for in `select` (libpq's own wait would hold the GIL, and with it
    the lease's heartbeat thread, for as long as the UPDATE waits for a row lock)."""
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            return pgconn.get_result()
        select.select([pgconn.socket], [], [], 1.0)


class _Unprepared(RuntimeError):
    """The fence's prepared statement is gone from the connection."""


def _abandon(pgconn: Any) -> None:
    """Out of an aborted pipeline and its transaction (nothing of it was committed)."""
    pgconn.pipeline_sync()
    _flush(pgconn)
    while (result := _next(pgconn)) is None or result.status != _PIPELINE_SYNC:
        pass
    pgconn.exit_pipeline_mode()
    pgconn.send_query(b"ROLLBACK")
    _flush(pgconn)
    while _next(pgconn) is not None:
        pass


def _expect(pgconn: Any, status: int) -> Any:
    """The next command's result (and the end of its results), or RuntimeError with the server's words."""
    result = _next(pgconn)
    if result is not None and result.error_field(_SQLSTATE) == b"26000":
        raise _Unprepared((result.error_message or b"").decode("utf-8", "replace"))
    if result is None or result.status != status:
        message = b"no result" if result is None else (result.error_message or b"status %d" % result.status)
        raise RuntimeError(message.decode("utf-8", "replace"))
    if _next(pgconn) is not None:
        raise RuntimeError("more than one result for one command")
    return result


def _expect_sync(pgconn: Any) -> None:
    result = _next(pgconn)
    if result is None or result.status != _PIPELINE_SYNC:
        raise RuntimeError("the pipeline's sync did not come back")


class RowFence(GroupFence):
    """The fence of a single message (smtp.Connection.send): acquire() says yes or no."""

    def __init__(self, line: FenceLine, delivery_id: int, token: str) -> None:
        super().__init__(line, token)
        self.delivery_id = delivery_id

    def acquire(self) -> bool:  # type: ignore[override]
        return bool(super().acquire([self.delivery_id]))


