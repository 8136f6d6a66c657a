"""Flower, as the Procfile runs it: on loopback only, behind its login, and it sees the tasks
the workers run (their task events are on: worker_send_task_events)."""
from __future__ import annotations

import base64
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import psutil
import pytest
from celery import Celery

from newsletter.config import celery_redis_url, celery_settings
from tests.support.net import free_port, http_status, wait_for
from tests.support.processes import BIN, ROOT, ProcessLog, celery_worker, stop

# one_pass (tests/conftest.py): Flower and a worker on a Redis of this test's own.
pytestmark = pytest.mark.one_pass


@contextmanager
def flower(env: Mapping[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    process = subprocess.Popen(  # the Procfile's `flower` line
        [str(BIN / "celery"), "-A", "celery_worker", "flower", "--address=127.0.0.1", f"--port={port}"],
        cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = ProcessLog(process)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or http_status(base + "/") != 0, 60, 0.2, "Flower to answer")
        assert process.poll() is None, log.text[-3000:]
        yield base, process
    finally:
        stop(process)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_flower_wants_its_login_and_sees_the_tasks(own_redis, monkeypatch):
    # Celery reads CELERY_BROKER_URL from the environment before its own settings: in `.ci/run`'s
    # RabbitMQ pass this process's client would send the task there, not to the test's broker.
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    login = f"ops:{secrets.token_urlsafe(12)}"
    env = {**own_redis, "FLOWER_BASIC_AUTH": login}
    with flower(env) as (base, process), celery_worker(env, queues="default", concurrency=1):
        assert http_status(base + "/") == 401
        assert http_status(base + "/", "ops:wrong") == 401
        assert http_status(base + "/api/workers", "ops:" + login.split(":")[1][:-1]) == 401
        assert http_status(base + "/", login) == 200
        listening = {c.laddr.ip for p in [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]
                     for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}

        broker = celery_redis_url(own_redis["REDIS_URL"])
        client = Celery("flower-test")
        client.config_from_object(celery_settings(broker, broker, {}))
        task_id = client.send_task("newsletter.tasks.system.ping").id

        def seen() -> bool:
            request = urllib.request.Request(f"{base}/api/task/info/{task_id}", headers={
                "Authorization": "Basic " + base64.b64encode(login.encode()).decode()})
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    return b'"SUCCESS"' in response.read()
            except urllib.error.HTTPError:
                return False  # 404 until Flower has the task's events
        wait_for(seen, 60, 0.5, "Flower to see the task succeed")
        client.close()


def test_flower_will_not_start_without_a_login(own_redis):
    env = {k: v for k, v in own_redis.items() if not k.startswith("FLOWER_")}
    result = subprocess.run([str(BIN / "celery"), "-A", "celery_worker", "flower", "--address=127.0.0.1",
                             f"--port={free_port()}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Flower needs a login: set FLOWER_BASIC_AUTH" in result.stderr
