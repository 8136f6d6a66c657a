"""How large a request body each route accepts, and the 413 answer when one is larger.

MAX_CONTENT_LENGTH (MAX_UPLOAD_MB) sizes the CSV imports; every other route takes at most
MAX_BODY_KB, except those that take a whole email (two 1,000,000-character bodies), which take
CONTENT_LIMIT. Without this, an anonymous form post of 200 MB was read, parsed and echoed back.
"""
from __future__ import annotations

from flask import Flask, current_app, request
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

# Routes that receive a CSV file: the app-wide MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = frozenset({"imports.upload", "api_imports.create"})
# Routes that receive an email's subject, HTML and text (up to 1,000,000 characters each, and
# a character can take 4 bytes of UTF-8).
CONTENT_ENDPOINTS = frozenset({
    "campaigns.new", "campaigns.edit", "campaigns.preview", "layouts.new", "layouts.edit", "layouts.preview",
    "api_campaigns.create", "api_campaigns.patch", "api_templates.create", "api_templates.patch",
    "api_notifications.create",
})
CONTENT_LIMIT = 8 * 1024 * 1024


def body_limit(endpoint: str | None) -> int:
    """The most bytes a request to `endpoint` may send."""
    upload = current_app.config["MAX_CONTENT_LENGTH"]
    if endpoint in UPLOAD_ENDPOINTS:
        return upload
    limit = CONTENT_LIMIT if endpoint in CONTENT_ENDPOINTS else current_app.config["MAX_BODY_KB"] * 1024
    return min(limit, upload)


def apply_limit() -> None:
    """The first hook of every request: CSRF and the rate limiter read the form before views do."""
    limit = body_limit(request.endpoint)
    request.max_content_length = limit
    if request.endpoint not in UPLOAD_ENDPOINTS:  # files are streamed to disk; other fields are not
        request.max_form_memory_size = limit
    if request.content_length is not None and request.content_length > limit:
        # Refused before a byte of it is read; the app's error handler shows this as a page, or
        # as problem+json under /api/. (A chunked body without a length is cut off at the limit
        # by Werkzeug with its own, terser 413.)
        raise RequestEntityTooLarge(_("The request (%(size)s) is larger than this address accepts: at most "
                                      "%(limit)s. Nothing was saved.", size=_size(request.content_length),
                                      limit=_size(limit)))


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def register(app: Flask) -> None:
    # Inserted first: hooks registered earlier (CSRF, the rate limiter's per-address key) read
    # the form, and a limit set after they parsed it would come too late.
    app.before_request_funcs.setdefault(None, []).insert(0, apply_limit)
