"""Applying one import batch with set-based SQL, in the caller's transaction.

The batch goes into a temporary stage table (PostgreSQL: COPY; SQLite: executemany), then
one INSERT for new subscribers, one UPDATE for changed ones and one INSERT ... SELECT for
list memberships. The final values were computed in Python, so both databases run the
same statements.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..models import ConsentSource, SubscriberStatus, SubscriptionStatus

StageRow = tuple[str, str, dict, bool, bool]  # email, name, attributes, is_new, changed


def _postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def existing(connection: Connection, emails: Sequence[str]) -> dict[str, tuple[int, str, dict]]:
    """{email: (id, name, attributes)} for the addresses already stored."""
    if not emails:
        return {}
    if _postgres(connection):
        rows = connection.execute(text("SELECT id, email, name, attributes FROM subscribers WHERE email = ANY(:e)"),
                                  {"e": list(emails)})
    else:
        rows = connection.execute(text("SELECT id, email, name, attributes FROM subscribers WHERE email IN "
                                       "(SELECT value FROM json_each(:e))"), {"e": json.dumps(list(emails))})
    result = {}
    for id_, email, name, attributes in rows:
        if isinstance(attributes, str):
            attributes = json.loads(attributes)
        result[email] = (id_, name, attributes or {})
    return result


def suppressed(connection: Connection, emails: Sequence[str]) -> set[str]:
    if not emails:
        return set()
    if _postgres(connection):
        rows = connection.execute(text("SELECT email FROM suppressions WHERE email = ANY(:e)"), {"e": list(emails)})
    else:
        rows = connection.execute(text("SELECT email FROM suppressions WHERE email IN "
                                       "(SELECT value FROM json_each(:e))"), {"e": json.dumps(list(emails))})
    return {row[0] for row in rows}


def _stage(connection: Connection, rows: Sequence[StageRow]) -> None:
    if _postgres(connection):
        connection.execute(text("CREATE TEMP TABLE import_stage (email text PRIMARY KEY, name text, "
                                "attributes jsonb, is_new boolean, changed boolean) ON COMMIT DROP"))
        cursor = connection.connection.driver_connection.cursor()
        with cursor.copy("COPY import_stage (email, name, attributes, is_new, changed) FROM STDIN") as copy:
            for email, name, attributes, is_new, changed in rows:
                copy.write_row((email, name, json.dumps(attributes), is_new, changed))
    else:
        connection.execute(text("DROP TABLE IF EXISTS temp.import_stage"))
        connection.execute(text("CREATE TEMP TABLE import_stage (email text PRIMARY KEY, name text, "
                                "attributes text, is_new boolean, changed boolean)"))
        connection.execute(
            text("INSERT INTO import_stage VALUES (:e, :n, :a, :i, :c)"),
            [{"e": e, "n": n, "a": json.dumps(a), "i": i, "c": c} for e, n, a, i, c in rows],
        )


def apply(connection: Connection, rows: Sequence[StageRow], *, list_ids: Sequence[int], confirmed: bool,
          now: datetime) -> list[tuple[int, int]]:
    """Write the batch; return the (subscriber_id, list_id) memberships it created."""
    if not rows:
        return []
    _stage(connection, rows)
    status = SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.UNCONFIRMED
    # No ON CONFLICT here: an address inserted concurrently (a form signup) fails the whole
    # batch, which rolls back and is retried; the retry sees the address as existing.
    connection.execute(text(
        "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at, confirmed_at) "
        "SELECT email, name, attributes, :status, :now, :now, :confirmed_at FROM import_stage WHERE is_new"
    ), {"status": status.value, "now": now, "confirmed_at": now if confirmed else None})
    connection.execute(text(
        "UPDATE subscribers SET name = st.name, attributes = st.attributes, updated_at = :now "
        "FROM import_stage st WHERE st.changed AND subscribers.email = st.email"
    ), {"now": now})
    created: list[tuple[int, int]] = []
    if list_ids:
        membership = SubscriptionStatus.CONFIRMED if confirmed else SubscriptionStatus.UNCONFIRMED
        params = {"status": membership.value, "now": now, "source": ConsentSource.IMPORT.value}
        # DO NOTHING keeps existing memberships as they are: someone who left a list stays out.
        insert = (
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            "SELECT s.id, l.id, :status, :now, :now FROM import_stage st "
            "JOIN subscribers s ON s.email = st.email JOIN lists l ON l.id IN "
            f"({', '.join(str(int(i)) for i in list_ids)}) "
            "ON CONFLICT DO NOTHING RETURNING subscriber_id, list_id"
        )
        if _postgres(connection):
            # One round trip: the consent rows are written from the INSERT's RETURNING.
            result = connection.execute(text(
                f"WITH ins AS ({insert}), consent AS (INSERT INTO consent_records "
                "(subscriber_id, list_id, action, source, created_at) "
                "SELECT subscriber_id, list_id, 'subscribed', :source, :now FROM ins) "
                "SELECT subscriber_id, list_id FROM ins"), params)
            return [(row[0], row[1]) for row in result]
        created = [(row[0], row[1]) for row in connection.execute(text(insert), params)]
        if created:
            connection.execute(
                text("INSERT INTO consent_records (subscriber_id, list_id, action, source, created_at) "
                     "VALUES (:s, :l, 'subscribed', :source, :now)"),
                [{"s": s, "l": l, "source": ConsentSource.IMPORT.value, "now": now} for s, l in created],
            )
    if not _postgres(connection):
        connection.execute(text("DROP TABLE temp.import_stage"))
    return created
