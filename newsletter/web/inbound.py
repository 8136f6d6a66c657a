"""Public endpoints where sending providers push bounces and complaints: /webhooks/<provider>.

No session, no CSRF token (a provider has neither): each request proves itself the provider's way
(services/deliverability/providers) or is refused with a JSON error. The body is bounded like
every route's (MAX_BODY_KB, web/body_limits.py). An address whose requests keep being refused
(PROVIDER_WEBHOOK_REFUSED_LIMIT, only refusals count) gets 429 until the window passes: checking
signatures, and fetching SNS certificates, is work an anonymous client should not get for free.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from ..extensions import csrf, limiter
from ..services.deliverability.providers import common, mailgun, postmark, sendgrid, ses

bp = Blueprint("inbound", __name__, url_prefix="/webhooks")
csrf.exempt(bp)
limiter.shared_limit(lambda: current_app.config["PROVIDER_WEBHOOK_REFUSED_LIMIT"], scope="provider-webhooks-refused",
                     deduct_when=lambda response: response.status_code in (400, 401, 403, 404, 413))(bp)


def _headers() -> dict[str, str]:
    """The request's headers, names in lower case (the providers look them up so)."""
    return {name.lower(): value for name, value in request.headers.items()}


def _answer(parsed: common.Parsed) -> Any:
    return jsonify(common.record_all(parsed).as_dict())


@bp.post("/ses")
def ses_events() -> Any:
    return _answer(ses.receive(request.get_data(), _headers()))


@bp.post("/sendgrid")
def sendgrid_events() -> Any:
    return _answer(sendgrid.receive(request.get_data(), _headers()))


@bp.post("/mailgun")
def mailgun_events() -> Any:
    return _answer(mailgun.receive(request.get_data(), _headers()))


@bp.post("/postmark")
def postmark_events() -> Any:
    auth = request.authorization
    username, password = (auth.username, auth.password) if auth and auth.type == "basic" else (None, None)
    return _answer(postmark.receive(request.get_data(), username, password, request.remote_addr or ""))


@bp.errorhandler(common.ProviderError)
def refused(error: common.ProviderError) -> Any:
    response = jsonify(error=error.message)
    if error.status == 401 and request.endpoint == "inbound.postmark_events":
        response.headers["WWW-Authenticate"] = 'Basic realm="postmark-webhook"'
    return response, error.status


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    """413 (body too large), 405... as JSON too: providers read JSON, not our error page."""
    return jsonify(error=error.description), error.code or 500
