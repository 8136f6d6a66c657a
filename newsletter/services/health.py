"""Readiness checks: is each backing service reachable? Each answer is one line."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from flask import current_app
from sqlalchemy import text

from ..extensions import db
from .messages import Message


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


def queue_depths(names: Sequence[str], timeout: float = 2) -> dict[str, int | None]:
    """Messages waiting in each Celery queue; None where the broker did not answer.

    A passive declare reports a queue's message count on RabbitMQ and on kombu's Redis
    transport alike (the sum of the queue's priority lists); "not found" means nobody
    declared or filled it yet, so nothing waits.
    """
    from kombu.exceptions import ChannelError

    celery_app = current_app.extensions["celery"]
    depths: dict[str, int | None] = {name: None for name in names}
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    try:
        with celery_app.connection_for_read(connect_timeout=timeout) as connection:
            if connection.transport.driver_type == "redis":
                connection.transport_options.update(options)
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
            for name in names:
                channel = connection.channel()  # a failed passive declare closes the channel on AMQP
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).message_count
                except ChannelError:
                    depths[name] = 0
                finally:
                    try:
                        channel.close()
                    except Exception:
                        pass
    except Exception:  # broker unreachable: the depths stay unknown
        pass
    return depths


def active_queues(timeout: float = 1) -> dict[str, list[str]]:
    """Each live worker and the queues it consumes (the workers that answer within `timeout`)."""
    celery_app = current_app.extensions["celery"]
    try:
        replies = celery_app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception:
        return {}
    return {worker: sorted(q["name"] for q in queues or []) for worker, queues in sorted(replies.items())}


def queue_status(names: Sequence[str], depths: dict[str, int | None],
                 consumers: dict[str, list[str]]) -> tuple[list[dict[str, Any]], list[Message]]:
    """Per queue: waiting messages and the workers consuming it; plus a warning per unserved queue
    (a Message: the dashboard shows it in the page's language)."""
    rows: list[dict[str, Any]] = []
    warnings: list[Message] = []
    for name in names:
        served_by = [worker for worker, queues in consumers.items() if name in queues]
        rows.append({"name": name, "depth": depths.get(name), "consumers": served_by})
        if not served_by:
            waiting = depths.get(name)
            command = f"celery -A celery_worker worker --queues {name}"
            warnings.append(Message("No worker consumes the %(queue)s queue (%(count)s waiting): its tasks wait until "
                                    "one starts (%(command)s).", queue=name, count=f"{waiting:,}", command=command)
                            if waiting else
                            Message("No worker consumes the %(queue)s queue: its tasks wait until one starts "
                                    "(%(command)s).", queue=name, command=command))
    return rows, warnings
