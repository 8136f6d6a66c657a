"""What an operator sees of the running platform: JSON logs that follow one send across
processes (logs, context, celery_context), and errors reported to Sentry when SENTRY_DSN is
set, scrubbed of subscribers' data (sentry, scrub). docs/operations.md describes both."""
from __future__ import annotations

from typing import Any

from . import logs, sentry


def register(config: dict[str, Any]) -> None:
    """Called by `create_app` before anything logs: the log format, then error reporting."""
    if config["LOG_FORMAT"] == "json":
        logs.install()
    sentry.init(config)
