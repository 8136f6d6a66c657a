"""A real Celery worker runs tasks inside the Flask app context, on every supported broker."""
import os
import tempfile
from pathlib import Path

import pytest

from newsletter import create_app
from newsletter.config import celery_redis_url
from newsletter.devserver.embedded_redis import EmbeddedRedis
from tests.support.net import reachable
from tests.support.processes import celery_worker

REDIS_SERVER = os.environ.get("TEST_REDIS_SERVER_URL", "redis://127.0.0.1:6379/14")
RABBITMQ = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def run_ping_through(monkeypatch, broker_url: str, result_backend: str) -> dict:
    # Through the environment, as in production: Celery reads these two variables at run
    # time ahead of its config, so the client and the worker must both see them.
    monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
    monkeypatch.setenv("CELERY_RESULT_BACKEND", result_backend)
    celery = create_app().extensions["celery"]
    with celery_worker(dict(os.environ), queues="default", concurrency=1):
        return celery.send_task("newsletter.tasks.system.ping").get(timeout=30)


def test_worker_on_the_embedded_redis(platform_env, monkeypatch):
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="nl-"))) as server:
        url = celery_redis_url(server.url)
        assert run_ping_through(monkeypatch, url, url) == {"app": "newsletter", "env": "testing"}


@pytest.mark.skipif(not reachable(REDIS_SERVER, 6379), reason=f"no Redis server at {REDIS_SERVER}")
def test_worker_on_a_redis_server(platform_env, monkeypatch):
    assert run_ping_through(monkeypatch, REDIS_SERVER, REDIS_SERVER) == {"app": "newsletter", "env": "testing"}


@pytest.mark.skipif(not reachable(RABBITMQ, 5672), reason=f"no RabbitMQ at {RABBITMQ}")
def test_worker_on_rabbitmq_with_redis_results(platform_env, monkeypatch):
    results = celery_redis_url(platform_env["REDIS_URL"])
    assert run_ping_through(monkeypatch, RABBITMQ, results) == {"app": "newsletter", "env": "testing"}
