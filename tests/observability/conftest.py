"""Fixtures for the observability tests: a Redis of their own, so the tasks they enqueue are
run by the workers they start (with the settings under test), never by the session's; and, for
the tests that write, a database of their own, so the session's processes (beat's sweeper runs
every second on the session's database) never touch what they send."""
from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.devserver.embedded_redis import EmbeddedRedis
from tests.support.processes import flask_cli


@pytest.fixture
def own_redis(platform_env) -> Iterator[dict[str, str]]:
    """platform_env with REDIS_URL (and so the broker) pointing at a Redis started for this test."""
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="nl-obs-"))) as server:
        env = {**platform_env, "REDIS_URL": server.url}
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            env.pop(name, None)
        yield env


@pytest.fixture
def own_platform(own_redis) -> tuple[dict[str, str], str]:
    """own_redis's environment on a database of its own, migrated; (that environment, an API key).

    With only its own Redis, a test's campaign was still on the session's database, where the
    session's beat (started by any earlier test) found it `sending` and had the session's
    workers send it: the test's worker then never ran the chord callback it waits for.
    """
    env = {**own_redis, "DATABASE_URL": f"sqlite:///{tempfile.mkdtemp(prefix='nl-obs-db-')}/own.db"}
    upgrade = flask_cli("db", "upgrade", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    created = flask_cli("api-keys", "create", "--name", "observability test", env=env)
    assert created.returncode == 0, created.stderr
    return env, created.stdout.strip().splitlines()[-1]


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, dict, Any]:
    """(status, response headers, decoded JSON body or None) of one HTTP request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, answer_headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, answer_headers, raw = exc.code, dict(exc.headers), exc.read()
    try:
        return status, answer_headers, json.loads(raw) if raw else None
    except ValueError:
        return status, answer_headers, None
