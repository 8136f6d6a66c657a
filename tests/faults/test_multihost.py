"""The platform across several hosts (network namespaces, tests/support/netns.py): PostgreSQL,
Redis (and RabbitMQ) and the SMTP server on one host, a bulk worker on each of two more, beat on
the first. Mid-campaign one worker host's link is cut: the campaign completes on the other, every
recipient exactly once, and the cut worker's rows come back through its expired lease (the claim
timeout is set far beyond the test, so nothing else could explain a quick recovery).

Runs against the Redis broker and against RabbitMQ. Needs root (namespaces); skipped otherwise.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import time
from collections import Counter

import pytest

from tests.conftest import TEST_SEND_SETTINGS
from tests.support import netns
from tests.support.net import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
# It brings its own PostgreSQL, Redis and RabbitMQ, so one pass of `.ci/run` is enough: the one
# on PostgreSQL (run it anywhere else with MULTIHOST=1).
WHY_NOT = netns.available() or (None if os.environ.get("DATABASE_URL", "").startswith("postgres")
                                or os.environ.get("MULTIHOST") else "runs in the PostgreSQL pass (or MULTIHOST=1)")
HOSTS = {"data": "198.18.0.1", "worker1": "198.18.0.11", "worker2": "198.18.0.12"}
N = 1500
VENV = os.path.dirname(sys.executable)
SECRET = secrets.token_urlsafe(32)  # one for every host, as in a real cluster


def _platform_env(net: netns.Network, database: str, redis: str, broker: str, host: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ")}
    instance = net.workdir / f"instance-{host}"
    instance.mkdir(exist_ok=True)
    return {**keep, **TEST_SEND_SETTINGS, "NEWSLETTER_ENV": "testing", "INSTANCE_PATH": str(instance),
            "SECRET_KEY": SECRET, "DATABASE_URL": database, "REDIS_URL": f"{redis}/0",
            "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": f"{redis}/2",
            "MAIL_SERVER": HOSTS["data"], "MAIL_PORT": "2525",
            "SEND_RATE": "100",  # the campaign lasts ~15 s: long enough to cut a host in the middle
            "SEND_CLAIM_TIMEOUT": "600",  # only a lease can explain a recovery within the test
            "LEASE_TTL": "4", "LEASE_RENEW_INTERVAL": "1", "MAIL_TIMEOUT": "5"}


def _driver(net: netns.Network, env: dict[str, str], *args: str) -> dict:
    done = net.run("data", [sys.executable, "-m", "tests.support.netns_driver", *args], env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _worker(net: netns.Network, host: str, env: dict[str, str]):
    return net.exec(host, [f"{VENV}/celery", "-A", "celery_worker", "worker", "--queues", "bulk,default",
                           "--concurrency", "2", "--loglevel", "INFO", "--hostname", f"{host}@{host}",
                           "--without-mingle", "--without-gossip"], env=env, log=host)


@pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_a_cut_worker_host_leaves_the_campaign_to_the_other_each_recipient_once(broker):
    with netns.Network(HOSTS) as net:
        database, redis = net.start_postgres("data"), net.start_redis("data")
        broker_url = net.start_rabbitmq("data") if broker == "rabbitmq" else f"{redis}/1"
        env = {host: _platform_env(net, database, redis, broker_url, host) for host in HOSTS}
        net.exec("data", [sys.executable, "-m", "tests.support.netns_smtp", HOSTS["data"], "2525",
                          str(net.workdir / "received.txt")], env=env["data"], log="smtp")
        wait_for(lambda: net.reachable("worker1", HOSTS["data"], 2525), 30, message="the SMTP server")
        upgrade = net.run("data", [f"{VENV}/flask", "--app", "wsgi", "db", "upgrade"], env=env["data"])
        assert upgrade.returncode == 0, upgrade.stderr[-3000:]

        net.exec("data", [f"{VENV}/celery", "-A", "celery_worker", "beat", "--loglevel", "INFO",
                          "--schedule", str(net.workdir / "beat-schedule")], env=env["data"], log="beat")
        for host in ("worker1", "worker2"):
            _worker(net, host, env[host])
        wait_for(lambda: all(" ready." in net.log(h) for h in ("worker1", "worker2")), 90,
                 message="both workers to be ready")

        started = _driver(net, env["data"], "prepare", str(N))
        campaign_id, emails = started["campaign_id"], started["emails"]
        status = lambda: _driver(net, env["data"], "status", str(campaign_id))  # noqa: E731
        received_file = net.workdir / "received.txt"
        wait_for(lambda: received_file.exists() and len(received_file.read_text().split()) >= 200, 60,
                 interval=0.05, message="the first 200 messages")
        net.cut("worker1")
        cut_at = time.monotonic()
        before_cut = status()
        assert before_cut["sent_by"].get("worker1", 0) > 0, f"worker1 had sent nothing: {before_cut}"
        assert before_cut["status"] == "sending", f"the campaign ended before the cut: {before_cut}"

        wait_for(lambda: status()["status"] == "sent", 240, interval=0.5,
                 message=f"the campaign to complete without worker1 (last: {status()})")
        completed_in = time.monotonic() - cut_at
        final = status()

        received = Counter(received_file.read_text().split())
        missing = [e for e in emails if received[e] == 0]
        twice = {e: n for e, n in received.items() if n > 1}
        assert (missing[:5], len(missing), twice) == ([], 0, {}), final
        assert sum(received.values()) == N
        assert final["ledger"] == {"sent": N}
        assert final["sent_by"].get("worker2", 0) > 0
        # worker1's unfinished rows came back because its lease expired, not by the claim timeout.
        # Which rows it held is read right after the cut (it can no longer write): a worker between
        # two batches (its last one handed back to the rate limit) may hold none, and then nothing
        # needed recovering (seen 1 run in 3 on a loaded machine); exactly-once is asserted above
        # either way, and tests/faults/test_worker_death.py proves the lease path on its own.
        held = before_cut["held_by"].get("worker1", 0)
        if held:
            assert any("lease expired" in note for note in final["recovered"]), (held, final["recovered"])
        # Reported, not asserted (a shared machine): the rows came back by the lease, far inside the
        # 600 s claim timeout; the time includes sending what was left at 100 msgs/s.
        print(f"\nmultihost ({broker}): cut worker1 after {before_cut['sent_by']} sent; campaign complete "
              f"{completed_in:.1f} s after the cut; it held {held} rows then; sent by {final['sent_by']}")
