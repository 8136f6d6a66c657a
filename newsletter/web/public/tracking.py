"""The tracking endpoints mailed in campaigns: the open pixel (/o/<token>) and the click redirect (/c/<token>).

The hottest public routes: no session, no database write, one Redis push per hit (see
services/engagement/events.py). A token we did not sign is a 404, never a redirect, so the
redirect cannot be used to send anyone anywhere else.
"""
from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, abort, redirect, request
from flask.typing import ResponseReturnValue

from ...services.engagement import events, tokens
from ...services.errors import NotFound

bp = Blueprint("tracking", __name__)

# The smallest transparent GIF (43 bytes).
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_STORE = {"Cache-Control": "no-store, private", "Pragma": "no-cache", "Referrer-Policy": "no-referrer"}


def _client() -> dict[str, Any]:
    return {"head": request.method == "HEAD", "user_agent": request.headers.get("User-Agent", "")[:512],
            "ip": request.remote_addr or "", "accept": request.headers.get("Accept", "")[:256],
            "referer": request.headers.get("Referer", "")[:512]}


@bp.get("/o/<token>")
def pixel(token: str) -> Response:
    try:
        events.record_open(token, **_client())
    except tokens.TokenInvalid:
        abort(404)
    return Response(GIF, mimetype="image/gif", headers=NO_STORE)


@bp.get("/c/<token>")
def click(token: str) -> ResponseReturnValue:
    try:
        url = events.record_click(token, **_client())
    except (tokens.TokenInvalid, NotFound):
        abort(404)
    response = redirect(url, 302)
    response.headers.update(NO_STORE)
    return response
