"""Fences: the last move before a message's final dot (sending -> committing), on a ledger's rows.

Two ledgers use them: the campaigns' deliveries and the transactional notifications (same
columns, same statuses). A fence that says no means a recovery gave the row to someone else.
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from sqlalchemy import update

from ...extensions import db
from ...models import Delivery, dialect
from ...models.base import utcnow

_NO_SYNC = {"synchronize_session": False}

# Formatted with the table's name: deliveries, or notifications (same columns, same statuses).
_FENCE_SQL = ("UPDATE {table} SET status = 'committing', updated_at = %s "
              "WHERE id = ANY(%s::bigint[]) AND claim = %s AND status = 'sending' RETURNING id")


class FenceLine:
    """A batch's own database connection for its fences, held from the first message to the last.

    On PostgreSQL every fence is then one prepared UPDATE and one pipelined COMMIT on the
    driver connection: no pool checkout (and its pre-ping), no ORM. SQLite (development)
    goes through the session.

    `model` is the ledger whose rows are fenced: Delivery (campaigns) or Notification
    (transactional mail); both have id, claim, status ('sending'/'committing') and updated_at.
    """

    def __init__(self, model: Any = Delivery) -> None:
        self._pooled: Any = None
        self.model = model
        self.sql = _FENCE_SQL.format(table=model.__tablename__)
        statuses = model.__table__.c.status.type.enum_class
        self.sending, self.committing = statuses("sending"), statuses("committing")

    @property
    def driver(self) -> Any:
        if not dialect.is_postgresql():
            return None
        if self._pooled is None:
            self._pooled = db.engine.raw_connection()
        return self._pooled.driver_connection

    def broken(self) -> None:
        """The connection failed mid-fence: never reuse it."""
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            try:
                pooled.invalidate()
            except Exception:  # noqa: BLE001
                pass

    def close(self) -> None:
        if self._pooled is not None:
            pooled, self._pooled = self._pooled, None
            pooled.close()  # back to the pool, which rolls back anything left open

    def group(self, token: str) -> GroupFence:
        """A fence for the rows of one round of messages (smtp.Sessions), all under `token`."""
        return GroupFence(self, token)

    def fence(self, delivery_id: int, token: str) -> RowFence:
        return RowFence(self, delivery_id, token)


class GroupFence:
    """sending -> committing around the final dots, with the crash window cut to a few µs.

    `acquire(ids)` moves the rows this claim still owns (uncommitted, so they stay locked)
    and returns their ids. `commit_async` writes COMMIT to PostgreSQL without waiting for the
    reply; the SMTP transport writes the final dots right after and then calls `confirm`. A
    worker killed between those writes is the only case left where the ledger and the SMTP
    server can disagree. Once committed, a message counts as handed over: if the worker dies
    later, the sweeper records it as sent rather than sending it again.
    """

    def __init__(self, line: FenceLine, token: str) -> None:
        self.line, self.token = line, token
        self._driver: Any = None

    def acquire(self, ids: list[int]) -> set[int]:
        line = self.line
        driver = line.driver
        if driver is None:
            model = line.model
            owned = set(db.session.scalars(
                update(model).where(model.id.in_(ids), model.claim == self.token, model.status == line.sending)
                .values(status=line.committing, updated_at=utcnow()).returning(model.id)
                .execution_options(**_NO_SYNC)).all())
            if not owned:
                db.session.rollback()
            return owned
        try:
            owned = {row[0] for row in driver.execute(line.sql, (utcnow(), ids, self.token), prepare=True)}
            if not owned:
                driver.rollback()
        except Exception:
            self.line.broken()
            raise
        return owned

    def commit_async(self) -> None:
        driver = self.line.driver
        if driver is None:
            db.session.commit()  # SQLite: a local file, no network reply to overlap with
            return
        self._driver = driver
        driver.pgconn.send_query(b"COMMIT")  # written and flushed; the reply is read in confirm()

    def confirm(self) -> None:
        """Read the COMMIT's reply. Never raises: the dots are already on their way.

        If the database connection died meanwhile, nobody knows whether that COMMIT landed;
        either way the rows are still ours (`sending` or `committing` under this claim), and
        the batch's `record` writes `sent` onto them once the server has answered.
        """
        if self._driver is None:
            return
        driver, self._driver = self._driver, None
        try:
            failed = None
            while (result := driver.pgconn.get_result()) is not None:
                if result.status != 1:  # COMMAND_OK
                    failed = (result.error_message or b"").decode("utf-8", "replace")
            if failed:
                raise RuntimeError(failed)
        except Exception as exc:  # noqa: BLE001  (any failure here must not lose the hand-over)
            current_app.logger.warning("claim %s: fence commit unconfirmed: %s", self.token, exc)
            self.line.broken()


class RowFence(GroupFence):
    """The fence of a single message (smtp.Connection.send): acquire() says yes or no."""

    def __init__(self, line: FenceLine, delivery_id: int, token: str) -> None:
        super().__init__(line, token)
        self.delivery_id = delivery_id

    def acquire(self) -> bool:  # type: ignore[override]
        return bool(super().acquire([self.delivery_id]))


