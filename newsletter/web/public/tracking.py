"""The tracking endpoints mailed in campaigns: the open pixel (/o/<token>) and the click redirect (/c/<token>).

The hottest public routes (issue 14: thousands a second after a big send). A GET or HEAD of
either is answered by `FastPath`, a WSGI layer in front of Flask's request machinery (inside
ProxyFix, so the client's address and scheme are already the real ones): it needs the app's
config, the token check and one Redis round trip, none of what Flask's hooks do for a page:
- no session, no login, no `remember_actor`: a hit acts for no one, and no cookie is read or set;
- no CSRF and no body limits: GET and HEAD only, the body is never read;
- no input guard: the token is checked strictly by `tokens.load` (a NUL is no valid token);
- no Flask-Limiter: no limit applies to these routes, and none should per address: a company's
  whole office, or Apple's and Google's image proxies, fetch from a few addresses. The bounds
  are elsewhere: nginx's connections per client (deploy/nginx.conf.template), the HMAC check
  before any Redis or database work (a forged token costs one hash), and the Redis buffer's cap
  (events.BUFFER_MAX), so a flood while the flusher is down cannot fill the broker's Redis;
- fixed security headers (headers.tracking_headers) instead of the page policy with its nonce.

A token we did not sign, a link that is gone, another method, or anything unexpected goes on
to Flask, to the views below: the same 404 page as anywhere else (never a redirect, so the
redirect cannot send anyone elsewhere), a 405, or the 500 page with the error logged through
the app's redacting logger. The views check the token again: a failed check never counted
anything, so nothing is counted twice.
"""
from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from flask import Blueprint, Flask, Response, abort, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.urls import iri_to_uri

from ...extensions import csrf, limiter
from ...services.automations import tracking as automation_tracking
from ...services.engagement import events, tokens
from ...services.errors import NotFound
from ..headers import tracking_headers

bp = Blueprint("tracking", __name__)
csrf.exempt(bp)
limiter.exempt(bp)

# The smallest transparent GIF (43 bytes).
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
KINDS = {"/o/": "open", "/c/": "click"}


def _client(environ: dict[str, Any]) -> dict[str, Any]:
    """What the classifier reads of a request (the address is ProxyFix's client, not the proxy)."""
    return {"head": environ.get("REQUEST_METHOD") == "HEAD", "user_agent": environ.get("HTTP_USER_AGENT", "")[:512],
            "ip": environ.get("REMOTE_ADDR") or "", "accept": environ.get("HTTP_ACCEPT", "")[:256],
            "referer": environ.get("HTTP_REFERER", "")[:512]}


def record(kind: str, token: str, environ: dict[str, Any]) -> str | None:
    """Count the hit; the click's URL (None for the pixel). TokenInvalid, or NotFound for a link that is gone."""
    if kind == "open":
        events.record_open(token, **_client(environ))
        return None
    return events.record_click(token, **_client(environ))


@lru_cache(maxsize=4096)
def _location(url: str) -> str:
    # A header is latin-1: an IRI in an email's link goes out %-encoded, as Werkzeug does it.
    return iri_to_uri(url)


StartResponse = Callable[..., Any]


class FastPath:
    """GET and HEAD of /o/<token> and /c/<token> without Flask's request context; everything
    else, and every answer but a good one, goes to `wsgi_app` (the Flask app)."""

    def __init__(self, app: Flask, wsgi_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        kind = KINDS.get(path[:3])
        if kind is None or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self.wsgi_app(environ, start_response)
        token = path[3:]
        if not token or "/" in token:  # as Flask routes it: no such page
            return self.wsgi_app(environ, start_response)
        try:
            with self.app.app_context():  # the config, the Redis client, the link look-up's session
                url = record(kind, token, environ)
        except Exception:  # noqa: BLE001 -- Flask answers (404 page, or 500 logged without the token)
            return self.wsgi_app(environ, start_response)
        headers = tracking_headers(environ.get("wsgi.url_scheme") == "https")
        head = environ["REQUEST_METHOD"] == "HEAD"
        if url is None:
            headers += [("Content-Type", "image/gif"), ("Content-Length", str(len(GIF)))]
            start_response("200 OK", headers)
            return [] if head else [GIF]
        headers += [("Location", _location(url)), ("Content-Length", "0")]
        start_response("302 FOUND", headers)
        return []


def register(app: Flask) -> None:
    """Put `FastPath` in front of the app; call before ProxyFix wraps it (ProxyFix must run first)."""
    app.wsgi_app = FastPath(app, app.wsgi_app)  # type: ignore[method-assign]


# What Flask answers when FastPath passed a request on --------------------------------------------


def _answer(kind: str, token: str) -> str | None:
    try:
        return record(kind, token, request.environ)
    except (tokens.TokenInvalid, NotFound):
        abort(404)


def _gif() -> Response:
    """The pixel's answer (campaigns' and automations')."""
    return Response(GIF, mimetype="image/gif", headers=tracking_headers(request.is_secure))


def _to(url: str | None) -> ResponseReturnValue:
    """A tracked link's answer: the redirect to its URL (campaigns' and automations')."""
    assert url is not None
    response = redirect(url, 302)
    response.headers.update(tracking_headers(request.is_secure))
    return response


@bp.route("/o/<token>", methods=["GET"])
def pixel(token: str) -> Response:
    _answer("open", token)
    return _gif()


@bp.route("/c/<token>", methods=["GET"])
def click(token: str) -> ResponseReturnValue:
    return _to(_answer("click", token))


# Automation emails (services/automations/tracking.py): their own tokens and routes, through Flask
# (a hit writes one database row; these are one automation email's readers, not a campaign's).

def _automation(kind: str, token: str) -> str | None:
    try:
        return automation_tracking.record(kind, token, **_client(request.environ))
    except (tokens.TokenInvalid, NotFound):
        abort(404)


@bp.route("/ao/<token>", methods=["GET"])
def automation_pixel(token: str) -> Response:
    _automation("open", token)
    return _gif()


@bp.route("/ac/<token>", methods=["GET"])
def automation_click(token: str) -> ResponseReturnValue:
    return _to(_automation("click", token))
