"""Process entry helpers: build the app or exit with one line that names the setting to fix."""
from __future__ import annotations

import logging
import re
import sys
from types import TracebackType

from flask import Flask

from .config import ConfigError

PREFIX = "newsletter: "


def redact(url: str) -> str:
    """Hide the password in a connection URL."""
    return re.sub(r"(//[^:/@]+):[^@/]+@", r"\1:***@", url)


def explain(exc: BaseException) -> str | None:
    """A one-line explanation for configuration failures we recognise, else None."""
    import kombu.exceptions
    import redis.exceptions
    import sqlalchemy.exc

    first_line = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0]
    if isinstance(exc, ConfigError):
        return f"configuration error: {exc}"
    if isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError):
        return f"cannot reach the database (check DATABASE_URL): {first_line}"
    if isinstance(exc, sqlalchemy.exc.ArgumentError | sqlalchemy.exc.NoSuchModuleError):
        return f"DATABASE_URL is not a usable database URL: {first_line}"
    if isinstance(exc, kombu.exceptions.OperationalError):
        return f"cannot reach the broker (check CELERY_BROKER_URL / REDIS_URL): {first_line}"
    if isinstance(exc, redis.exceptions.ConnectionError):
        return f"cannot reach Redis (check REDIS_URL): {first_line}"
    return None


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    message = explain(exc)
    if message is None:
        sys.__excepthook__(kind, exc, tb)
    else:
        print(PREFIX + message, file=sys.stderr)


def mode_line(app: Flask) -> str | None:
    """The start-up line naming the mode and why (none for the test suite's own processes)."""
    mode, reason = app.config["ENV_NAME"], app.config["ENV_REASON"]
    if mode == "production":
        return f"production mode ({reason})"
    if mode == "development":
        return (f"DEVELOPMENT mode ({reason}): session cookies are not Secure, every email is also kept in "
                "the outbox, and a generated SECRET_KEY is used if none is set. Set NEWSLETTER_ENV=production "
                "for a deployment.")
    return None


def app_or_exit() -> Flask:
    """Used by wsgi.py and celery_worker.py: a misconfigured process says why in one line, and
    every process says loudly which mode it runs in and why."""
    from . import create_app

    sys.excepthook = _excepthook
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(PREFIX + f"configuration error: {exc}")
    if line := mode_line(app):
        if app.config["LOG_FORMAT"] == "json":
            logging.getLogger("newsletter.startup").warning(line)
        else:
            print(PREFIX + line, file=sys.stderr)
    return app
