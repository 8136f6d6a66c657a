"""A test session's own Redis database and RabbitMQ vhost on shared servers.

Several test sessions (CI, each engineer's runs) share one Redis server and one RabbitMQ broker on
a machine. Their databases are fresh per session, so their campaign ids collide: in one shared Redis
database a session's campaign 7 found another session's snapshot lease for "campaign 7" and waited
out its 60 s (tests/web/test_editor_browser.py), and error counters, engagement buffers and worker
leases are shared the same way. On one vhost, queues named `bulk` and `default` are shared too, and a
session's worker takes another session's messages. Each session therefore claims an empty Redis
database and creates a vhost of its own, and gives both back at the end.
"""
from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

CLAIM_KEY = "nltest:redis-db:{}"  # in database 0: which session holds database N
CLAIM_TTL = 6 * 3600  # a crashed session's claim lapses; a whole suite run takes well under this
FIRST_PRIVATE_DB = 2  # 0 and 1 are the ones `.ci/run` names (REDIS_URL, CELERY_RESULT_BACKEND)


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


@contextmanager
def private_redis_db(url: str) -> Iterator[str]:
    """`url` pointing at an empty database of the same server that this session claimed (emptied
    again at the end); `url` itself if none is free (the session then shares, as before)."""
    import redis

    token = uuid.uuid4().hex
    claims = redis.Redis.from_url(_with_db(url, 0), socket_timeout=5)
    count = int(claims.config_get("databases").get("databases", 16))
    for db in range(FIRST_PRIVATE_DB, count):
        if not claims.set(CLAIM_KEY.format(db), token, nx=True, ex=CLAIM_TTL):
            continue
        own = redis.Redis.from_url(_with_db(url, db), socket_timeout=5)
        if own.dbsize():  # someone outside this protocol uses it: leave it to them
            claims.delete(CLAIM_KEY.format(db))
            continue
        try:
            yield _with_db(url, db)
        finally:
            own.flushdb()  # only this session's keys: the database was empty when claimed
            if claims.get(CLAIM_KEY.format(db)) == token.encode():
                claims.delete(CLAIM_KEY.format(db))
        return
    yield url


def _rabbitmqctl(*args: str) -> bool:
    try:
        return subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def private_vhost(broker_url: str) -> Iterator[str]:
    """`broker_url` on a vhost created for this session (deleted at the end) when the broker is a
    local RabbitMQ that `rabbitmqctl` can manage; `broker_url` itself otherwise."""
    parts = urlsplit(broker_url)
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not (parts.scheme.startswith(("amqp", "pyamqp")) and local and shutil.which("rabbitmqctl")):
        yield broker_url
        return
    vhost = f"nltest-{uuid.uuid4().hex[:10]}"
    if not _rabbitmqctl("add_vhost", vhost):
        yield broker_url
        return
    try:
        if not _rabbitmqctl("set_permissions", "-p", vhost, parts.username or "guest", ".*", ".*", ".*"):
            yield broker_url
            return
        yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, parts.fragment))
    finally:
        _rabbitmqctl("delete_vhost", vhost)
