"""A dead worker's claims come back through its liveness lease within seconds, each recipient once.

Every test runs its own workers and beat with SEND_CLAIM_TIMEOUT and SEND_QUEUED_TIMEOUT at
120 s and a 2-second lease, so only the lease can explain a recovery before those timeouts;
the recovered rows' history also says which rule moved them. The measured times are printed
(`pytest -s`): from the kill (or the cut) until the last row the victim held left `sending` /
`committing`, and until the campaign was `sent`.
"""
from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import Delivery, DeliveryStatus
from newsletter.models.delivery_attempt import DeliveryAttempt
from tests.pipeline.conftest import assert_exactly_once, assert_totals_match_ledger, start_sending, status_of
from tests.support.net import wait_for
from tests.support.processes import celery_beat, celery_worker
from tests.support.proxy import CuttableLink

pytestmark = pytest.mark.timeout(300)

CLAIM_TIMEOUT = 120
# FAULT_LEASE_TTL=10 FAULT_SWEEP_INTERVAL=15 measures the production defaults' recovery instead.
_TTL, _SWEEP = float(os.environ.get("FAULT_LEASE_TTL", "2")), os.environ.get("FAULT_SWEEP_INTERVAL", "1")
LEASE_ENV = {"LEASE_TTL": f"{_TTL:g}", "LEASE_RENEW_INTERVAL": f"{min(2.0, _TTL / 5):g}",
             "SEND_CLAIM_TIMEOUT": str(CLAIM_TIMEOUT), "SEND_QUEUED_TIMEOUT": str(CLAIM_TIMEOUT),
             "SEND_BATCH_SIZE": "40", "SWEEP_INTERVAL": _SWEEP}
# As the Procfile runs bulk workers: a batch goes to a pool process only when one is free, so a
# worker holds no message it has not started (a dead worker's unstarted batches would wait for
# SEND_QUEUED_TIMEOUT: nothing in the ledger says who reserved them).
FAIR = ("-O", "fair", "--prefetch-multiplier", "1")
HELD = (DeliveryStatus.SENDING, DeliveryStatus.COMMITTING)
MEASURED: list[str] = []


@pytest.fixture
def lease_env(platform_env) -> dict[str, str]:
    return {**platform_env, **LEASE_ENV}


@contextmanager
def survivor(env: dict[str, str]) -> Iterator[None]:
    """The worker that lives on (bulk and default: it runs the sweeps too) and beat."""
    with celery_worker(env, queues="bulk,default", concurrency=2, name="survivor", options=FAIR), celery_beat(env):
        yield


def held_by(pattern: str) -> dict[int, str]:
    """Rows in `sending`/`committing` whose worker column matches `pattern` (SQL LIKE): id -> worker."""
    db.session.rollback()
    rows = dict(db.session.execute(select(Delivery.id, Delivery.worker).where(
        Delivery.status.in_(HELD), Delivery.worker.like(pattern))).all())
    db.session.commit()
    return rows


def both_pool_processes_busy() -> bool:
    """The victim's two pool processes each hold a batch: with `-O fair` it has no message it has
    not started (one received in the few ms before its claim would wait for SEND_QUEUED_TIMEOUT)."""
    return len({worker.rsplit(" pid ", 1)[1] for worker in held_by("victim-%").values()}) == 2


def still_held(ids: list[int]) -> int:
    db.session.rollback()
    return len(db.session.scalars(select(Delivery.id).where(Delivery.id.in_(ids), Delivery.status.in_(HELD))).all())


def sweeper_notes(campaign_id: int) -> dict[int, list[str]]:
    db.session.rollback()
    rows = db.session.execute(select(DeliveryAttempt.delivery_id, DeliveryAttempt.smtp_message)
                              .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
                              .where(Delivery.campaign_id == campaign_id, DeliveryAttempt.worker == "sweeper")).all()
    notes: dict[int, list[str]] = {}
    for delivery_id, message in rows:
        notes.setdefault(delivery_id, []).append(message)
    return notes


def recovered_exactly_once(label: str, campaign_id: int, orphaned: list[int], since: float, smtp_server,
                           emails: list[str], every_row_by_lease: bool = True) -> None:
    """Wait for the orphaned rows and then the campaign; check exactly-once and the lease's part; report."""
    assert orphaned, "the victim held no rows at the fault: nothing was tested"
    wait_for(lambda: still_held(orphaned) == 0, CLAIM_TIMEOUT - 30, interval=0.1,
             message=f"the {len(orphaned)} rows the victim held to be recovered")
    recovered = time.monotonic() - since
    wait_for(lambda: status_of(campaign_id) == "sent", 120, interval=0.1, message="the campaign to finish")
    finished = time.monotonic() - since
    assert_exactly_once(smtp_server, emails)
    campaign = assert_totals_match_ledger(campaign_id)
    assert campaign.sent == len(emails)
    notes = sweeper_notes(campaign_id)
    # Only the lease moved rows: the claim- and queued-timeout rules never fired (120 s away).
    assert notes and all("lease expired" in note for found in notes.values() for note in found), notes
    if every_row_by_lease:  # the victim is dead: nobody but the sweeper could have moved its rows
        assert set(orphaned) <= set(notes)
    line = (f"{label}: {len(orphaned)} held rows recovered {recovered:.1f} s after the fault, "
            f"campaign of {len(emails)} finished {finished:.1f} s after it "
            f"(LEASE_TTL {LEASE_ENV['LEASE_TTL']} s, SWEEP_INTERVAL {LEASE_ENV['SWEEP_INTERVAL']} s)")
    MEASURED.append(line)
    print("\nrecovery time:", line)


def test_sigkill_of_one_pool_process(ctx, lease_env, smtp_server, send_rate):
    send_rate(80)
    with survivor(lease_env), celery_worker(lease_env, queues="bulk", concurrency=2, name="victim", options=FAIR):
        campaign_id, emails = start_sending(ctx, 600, "pool")
        found = wait_for(lambda: held_by("victim-%"), 60, interval=0.05, message="rows claimed by the victim")
        pid = int(next(iter(found.values())).rsplit(" pid ", 1)[1])
        os.kill(pid, signal.SIGKILL)  # one pool process, mid-batch; its parent lives on
        since = time.monotonic()
        time.sleep(0.2)  # gone for sure: what it held is what it leaves behind
        orphaned = list(held_by(f"% pid {pid}"))
        recovered_exactly_once("SIGKILL of one pool process", campaign_id, orphaned, since, smtp_server, emails)


def test_sigkill_of_the_whole_worker(ctx, lease_env, smtp_server, send_rate):
    send_rate(80)
    with survivor(lease_env), celery_worker(lease_env, queues="bulk", concurrency=2, name="victim",
                                            options=FAIR) as (victim, _):
        campaign_id, emails = start_sending(ctx, 600, "node")
        wait_for(both_pool_processes_busy, 60, interval=0.05, message="both victim processes sending")
        os.killpg(victim.pid, signal.SIGKILL)  # the main process and its pool, at once
        since = time.monotonic()
        victim.wait()
        time.sleep(0.2)
        orphaned = list(held_by("victim-%"))
        recovered_exactly_once("SIGKILL of the whole worker", campaign_id, orphaned, since, smtp_server, emails)


def _through(link: CuttableLink, url: str) -> str:
    """`url` (a Redis URL, unix socket or TCP) rewritten to go through `link` on loopback."""
    parts = urlsplit(url)
    database = parse_qs(parts.query).get("db", [parts.path.strip("/") or "0"])[0]
    return f"redis://127.0.0.1:{link.port}/{database}"


def _redis_target(url: str) -> tuple[str, int] | str:
    parts = urlsplit(url)
    return parts.path if parts.scheme == "unix" else (parts.hostname or "127.0.0.1", parts.port or 6379)


def test_a_worker_cut_off_from_redis(ctx, lease_env, smtp_server, send_rate):
    """A partition, not a crash: the victim lives on, still reaching the database and the SMTP
    server, but its link to Redis (broker, lease, rate limiter) swallows everything. Its lease
    expires; it must stop sending on its own (self-fencing) or be refused by its fences, and
    the rest go out once, from the survivor.

    (The database link is left up: a worker cut off from PostgreSQL in the middle of a write
    transaction keeps that transaction's row locks until PostgreSQL notices the dead client —
    TCP keepalives, idle_in_transaction_session_timeout — and the sweeper's UPDATE waits for them.)
    """
    broker = lease_env.get("CELERY_BROKER_URL", "")
    if broker and not broker.startswith(("redis://", "redis+socket://", "unix://")):
        pytest.skip("the cut goes through the Redis link: run on the Redis broker")
    redis_url = lease_env["REDIS_URL"]
    link = CuttableLink(_redis_target(redis_url))
    victim_env = {**lease_env, "REDIS_URL": _through(link, redis_url)}
    victim_env.pop("CELERY_BROKER_URL", None)  # broker and results follow REDIS_URL
    victim_env.pop("CELERY_RESULT_BACKEND", None)
    send_rate(80)
    try:
        with survivor(lease_env), celery_worker(victim_env, queues="bulk", concurrency=2, name="victim",
                                                options=FAIR) as (victim, _):
            campaign_id, emails = start_sending(ctx, 600, "cut")
            wait_for(both_pool_processes_busy, 60, interval=0.05, message="both victim processes sending")
            link.cut()
            since = time.monotonic()
            orphaned = list(held_by("victim-%"))
            # The victim still reaches the database: it may hand some rows back itself.
            recovered_exactly_once("network cut between a worker and Redis", campaign_id, orphaned, since,
                                   smtp_server, emails, every_row_by_lease=False)
            os.killpg(victim.pid, signal.SIGKILL)  # a cut worker cannot shut down cleanly
            victim.wait()
    finally:
        link.close()


def test_a_slow_but_live_worker_keeps_its_rows(ctx, lease_env, smtp_server, send_rate):
    """The SMTP server answers each final dot after 2.5 s, longer than the lease's 2 s: the
    heartbeat renews it meanwhile, so the sweeper takes nothing and nothing is sent twice."""
    env = {**lease_env, "LEASE_TTL": "2", "LEASE_RENEW_INTERVAL": "0.3", "SWEEP_INTERVAL": "1"}
    send_rate(None)
    smtp_server.data_delay = 2.5
    with celery_worker(env, queues="bulk,default", concurrency=2, name="slow", options=FAIR), celery_beat(env):
        campaign_id, emails = start_sending(ctx, 60, "slow")
        wait_for(lambda: status_of(campaign_id) == "sent", 120, interval=0.2, message="the campaign to finish")
    assert_exactly_once(smtp_server, emails)
    assert_totals_match_ledger(campaign_id)
    # No row was taken from the slow worker because of its lease. (The session's own workers, if
    # an earlier test started them, sweep with a 10 s claim timeout: a batch slower than that
    # can lose its rows to that rule, which this test is not about.)
    notes = sweeper_notes(campaign_id)
    assert not [note for found in notes.values() for note in found if "lease" in note], notes
