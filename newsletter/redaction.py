"""Signed subscriber-link tokens kept out of every log line (access log and the app's own).

The tokens in /unsubscribe/<token>, /preferences/<token>, ... act for the subscriber: a log
line holding one would be as good as the link for whoever reads the logs or the log service.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import unquote

# The public routes whose next path segment is a signed token (newsletter/web/public/pages.py),
# and the tracking pixel and redirect (web/public/tracking.py): their tokens act for no one, but
# in individual mode they name a subscriber, which an access log has no business keeping.
TOKEN_ROUTES = ("confirm", "unsubscribe", "preferences", "manage", "view", "o", "c")
KEEP = ("sent", "preview")  # /manage/sent is a page; "preview" is the inert stand-in, no secret
REDACTED = "<redacted>"

_segment = re.compile(rf"(/(?:{'|'.join(TOKEN_ROUTES)})/+)(?!(?:{'|'.join(KEEP)})(?:[/?#\s\"]|$))[^/?#\s\"]+")
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


class RedactFilter(logging.Filter):
    """Redacts a record's message in place (Flask logs "Exception on /unsubscribe/<token> [POST]")."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
