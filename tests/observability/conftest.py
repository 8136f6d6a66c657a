"""Fixtures for the observability tests: a Redis of their own, so the tasks they enqueue are
run by the workers they start (with the settings under test), never by the session's."""
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


@pytest.fixture
def own_redis(platform_env) -> Iterator[dict[str, str]]:
    """platform_env with REDIS_URL (and so the broker) pointing at a Redis started for this test."""
    with EmbeddedRedis(Path(tempfile.mkdtemp(prefix="nl-obs-"))) as server:
        env = {**platform_env, "REDIS_URL": server.url}
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
            env.pop(name, None)
        yield env


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
