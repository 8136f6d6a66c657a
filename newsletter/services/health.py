"""Readiness checks: is each backing service reachable? Each answer is one line."""
from __future__ import annotations

import redis
from flask import current_app
from sqlalchemy import text

from ..extensions import db


def _describe(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {message[0] if message else 'unreachable'}"


def check_database() -> str | None:
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return _describe(exc)
    return None


def check_broker() -> str | None:
    celery_app = current_app.extensions["celery"]
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=3)
    except Exception as exc:
        return _describe(exc)
    return None


def check_redis() -> str | None:
    try:
        client = redis.Redis.from_url(
            current_app.config["REDIS_URL"], socket_timeout=3, socket_connect_timeout=3
        )
        client.ping()
        client.close()
    except Exception as exc:
        return _describe(exc)
    return None


CHECKS = {"database": check_database, "broker": check_broker, "redis": check_redis}


def readiness() -> dict[str, str | None]:
    """Map each dependency to None (reachable) or a one-line reason it is not."""
    return {name: check() for name, check in CHECKS.items()}


def workers(timeout: float = 0.5) -> list[str]:
    """Names of the Celery workers that answered a ping within `timeout` seconds."""
    celery_app = current_app.extensions["celery"]
    try:
        replies = celery_app.control.ping(timeout=timeout) or []
    except Exception:
        return []
    return sorted(name for reply in replies for name in reply)
