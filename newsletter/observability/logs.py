"""LOG_FORMAT=json: one JSON object a line, from web, workers and beat alike.

Each line has `timestamp` (UTC, ISO 8601), `level`, `logger`, `message`, the process id, the
context (context.py: `request_id`, `task_id`, `task`, `campaign_id`, `notification_id`,
`delivery_ids`...) and any `extra=` fields the call passed. The message and a traceback go
through the same token redaction as the text log (newsletter/redaction.py).

The web process installs the handler itself (`install`); Celery sets up its own handlers in
the worker and beat, and `use_json` swaps their formatter (celery_context.py connects it).
"""
from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from ..redaction import redact
from . import context

# The attributes every LogRecord has: anything else on a record came from `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
# Celery's task lines pass `data` (the task's args and kwargs, reprs): the message already says
# what happened, and args may hold an address (send_test_email's `to`).
_LEFT_OUT = frozenset({"data"})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "pid": record.process,
        }
        entry.update(context.current())
        data = getattr(record, "data", None)
        if isinstance(data, dict) and "id" in data and "task_id" not in entry:
            # Celery's "Task ...[id] received" line, logged by the worker's main process, outside the task.
            entry.update(task_id=data["id"], task=data.get("name"))
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in _LEFT_OUT and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, default=str, ensure_ascii=False)


class JsonHandler(logging.StreamHandler):
    """The web process's root handler (marked by its class, so a second `install` adds none)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(JsonFormatter())


def install(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger that propagates to the root (Flask's app logger too:
    it adds its own text handler only when no handler is found up the tree)."""
    logging.captureWarnings(True)  # a warning is a JSON line too, not text on stderr
    root = logging.getLogger()
    if not any(isinstance(handler, JsonHandler) for handler in root.handlers):
        root.addHandler(JsonHandler())
    if root.level == logging.NOTSET or root.level > level:
        root.setLevel(level)


def use_json(logger: logging.Logger) -> None:
    """Give every handler of `logger` the JSON formatter (the handlers Celery, or gunicorn, made)."""
    for handler in logger.handlers:
        handler.setFormatter(JsonFormatter())
