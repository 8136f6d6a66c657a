"""The planner's statistics on the audience tables, refreshed when a bulk step needs them.

PostgreSQL plans from statistics that autovacuum keeps up to date, when it runs and once it
gets there. Right after a bulk load (an import, a database restored or seeded) they can be
missing, and a plan made on "this table is empty" can be quadratic: the campaign snapshot
measured 3 s instead of 0.13 s for 10,000 recipients. SQLite: nothing to do.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from ...models import dialect

TABLES = ("subscribers", "subscriptions")


def refresh(connection: Connection) -> None:
    """ANALYZE the audience tables, as PostgreSQL's docs advise after a bulk load.

    Best effort: if a (wraparound) vacuum holds the tables, nobody waits for it.
    """
    if not dialect.is_postgresql(connection):
        return
    try:
        with connection.begin_nested():
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            connection.execute(text(f"ANALYZE {', '.join(TABLES)}"))
    except OperationalError:
        pass  # statistics stay as they were; autovacuum, where it runs, gets there later


def stale(connection: Connection) -> bool:
    """Never analyzed, or a fifth of the rows changed since (autovacuum's own default is a tenth)."""
    if not dialect.is_postgresql(connection):
        return False
    return bool(connection.execute(text(
        "SELECT coalesce(bool_or(greatest(last_analyze, last_autoanalyze) IS NULL "
        "OR n_mod_since_analyze > greatest(1000, n_live_tup / 5)), false) "
        "FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ANY(:tables)"),
        {"tables": list(TABLES)}).scalar())


def refresh_if_stale(connection: Connection) -> None:
    if stale(connection):
        refresh(connection)
