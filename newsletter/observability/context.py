"""The context a log line or an error report carries: the request id of the web request being
served (or of the request that enqueued the running task), the task's id and name, and the ids
it was given (campaign, notification, deliveries...).

A ContextVar, so gunicorn's threads and the worker's tasks each see their own; set by the web
hooks (web/request_id.py) and the Celery signals (celery_context.py), read by the JSON log
formatter (logs.py) and the Sentry scrubber's tags (sentry.py).
"""
from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from typing import Any

HEADER = "X-Request-ID"
# What an incoming X-Request-ID may be to be kept (nginx's $request_id, a UUID, a load
# balancer's trace id): short, and nothing that could smuggle text or an address into a log line.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=-]{7,127}")

_fields: ContextVar[dict[str, Any] | None] = ContextVar("newsletter_log_context", default=None)


def request_id_from(incoming: str | None) -> str:
    """The caller's X-Request-ID when it is sane, else a new one."""
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def current() -> dict[str, Any]:
    return _fields.get() or {}


def request_id() -> str | None:
    return current().get("request_id")


def bind(**fields: Any) -> Token:
    """Add `fields` to the context until `reset` is called with the token returned."""
    return _fields.set({**current(), **{k: v for k, v in fields.items() if v is not None}})


def reset(token: Token) -> None:
    _fields.reset(token)
