"""How many times the happy path writes a delivery row, counted by PostgreSQL itself (issue 19).

pg_stat_user_tables counts every row a table's INSERTs and UPDATEs touched. A backend keeps
its counts in local memory and flushes them at most once a second, when idle for ~10 s, and at
exit; so before each read every other backend of the test database is ended (the workers'
pools reconnect on their next checkout, as after any dropped connection), which makes them
flush. The counters are read with the bench's own helpers (bench/platform_db.py).
"""
from __future__ import annotations

import os

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.platform_db import stat_tables, table_writes_per_message
from newsletter.extensions import db
from tests.pipeline.conftest import assert_exactly_once, ledger, start_sending, wait_until_status
from tests.support.net import wait_for

pytestmark = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                reason="pg_stat_user_tables is PostgreSQL's; SQLite keeps no such counters")
N = 300
# The happy path's writes of a delivery row: the snapshot's INSERT, then UPDATEs. Today's
# ledger: committing (the fence, which is also the claim), sent (record); publication writes the
# campaign's cursor once a window, not the rows.
UPDATES_PER_ROW = 2


def _flushed_counters() -> dict:
    """pg_stat_user_tables of the test database once every other backend of the moment has exited
    (and flushed). Backends that connect afterwards (beat's sweeps) write no delivery row here."""
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ended = list(db.session.scalars(text(f"SELECT pid {others}")))
    db.session.execute(text("SELECT pg_terminate_backend(pid) FROM unnest(:pids) AS pid"), {"pids": ended})
    db.session.commit()

    def still_there() -> int:
        found = db.session.scalar(text(f"SELECT count(*) {others} AND pid = ANY(:pids)"), {"pids": ended})
        db.session.commit()
        return int(found or 0)

    wait_for(lambda: still_there() == 0, 30, interval=0.05, message="the other backends to exit")
    db.session.close()
    db.engine.dispose()  # this process's own backends too: their counts flush at exit
    url = make_url(db.engine.url).set(drivername="postgresql").render_as_string(hide_password=False)
    return stat_tables(url)


def test_the_happy_path_writes_a_delivery_row_a_counted_number_of_times(ctx, worker, smtp_server, send_rate):
    send_rate(None)
    before = _flushed_counters()
    campaign_id, emails = start_sending(ctx, N, "lw")
    wait_until_status(campaign_id, "sent")
    assert ledger(campaign_id) == {"sent": N}
    assert_exactly_once(smtp_server, emails)
    writes = table_writes_per_message(before, _flushed_counters(), N, ("deliveries", "delivery_attempts"))
    deliveries = writes["deliveries"]
    # Exactly: any retry, hand-back or recovery would add writes, and none happens here.
    assert (deliveries["n_tup_ins"], deliveries["n_tup_upd"], deliveries["n_tup_del"]) == (1, UPDATES_PER_ROW, 0), \
        writes["by_table"]
    # A send recorded onto its own row is that row's history entry (send_log.detail): no attempt row.
    assert writes["delivery_attempts"]["n_tup_ins"] == 0, writes["by_table"]
