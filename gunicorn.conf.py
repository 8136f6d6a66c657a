"""Gunicorn settings shared by the Procfile's `web` and `make run` (gunicorn reads this file
from its working directory; the command line still sets bind, workers and the log target).

Only the logger is set here: the access log must not hold the signed tokens of subscriber
links (/unsubscribe/<token>, /preferences/<token>, ...): the rule lives in newsletter/redaction.py,
which the app's own logger uses too.
"""
from __future__ import annotations

from gunicorn.glogging import Logger

from newsletter.redaction import redact


class RedactingLogger(Logger):
    """gunicorn's logger, with every string it may write into an access line redacted
    (the request line, path, query string, referer, and any header or environ atom)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}


logger_class = RedactingLogger
