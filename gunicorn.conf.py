"""Gunicorn settings shared by the Procfile's `web` and `make run` (gunicorn reads this file
from its working directory; the command line still sets bind, workers and the log target).

Only the logger is set here: the access log must not hold the signed tokens of subscriber
links (/unsubscribe/<token>, /preferences/<token>, ...). They never expire, so a log line
would be as good as the link for whoever reads the logs or the log service.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from gunicorn.glogging import Logger

# The public routes whose next path segment is a signed token (newsletter/web/public.py).
TOKEN_ROUTES = ("confirm", "unsubscribe", "preferences", "manage", "view")
KEEP = ("sent", "preview")  # /manage/sent is a page; "preview" is the inert stand-in, no secret
REDACTED = "<redacted>"

_segment = re.compile(r"(/(?:%s)/+)(?!(?:%s)(?:[/?#\s\"]|$))[^/?#\s\"]+" % ("|".join(TOKEN_ROUTES), "|".join(KEEP)))
# A token in a query string, should a link ever carry one there.
_query = re.compile(r"(?i)((?:^|[?&;])[\w.-]*token=)[^&;#\s\"]+")


def _redact(text: str) -> str:
    return _query.sub(r"\1" + REDACTED, _segment.sub(r"\1" + REDACTED, text))


def redact(text: str) -> str:
    """`text` with the token segments of subscriber links and `...token=` query values replaced.

    The raw request line may spell the path with %-escapes the router decodes (%2F, %75...):
    then the decoded, redacted form is logged instead.
    """
    if "/" not in text and "=" not in text and "%" not in text:
        return text
    redacted = _redact(text)
    if "%" in redacted:
        decoded = unquote(redacted)
        if _redact(decoded) != decoded:
            return _redact(decoded)
    return redacted


class RedactingLogger(Logger):
    """gunicorn's logger, with every string it may write into an access line redacted
    (the request line, path, query string, referer, and any header or environ atom)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}


logger_class = RedactingLogger
