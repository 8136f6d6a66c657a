"""Error answers for the whole app: an HTTP error as a page (JSON for a JSON client, problem+json
under /api/), and a service's NotFound or StateConflict that no view caught as a 404 or a 409.

Views look rows up through the services and let NotFound rise to here instead of each writing
its own `_get_or_404`. A view that shows a service error as a form error still catches it.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext
from werkzeug import exceptions as http
from werkzeug.exceptions import HTTPException

from ..extensions import db
from ..services.errors import NotFound, StateConflict
from ..services.messages import N_
from .api import http_problem, service_problem
from .i18n import localized


def _under_api() -> bool:
    return request.path.startswith("/api/")


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


# Pages' headings and, where a view gave no reason of its own, their text: ours, not Werkzeug's.
_TITLES = {400: N_("Bad request"), 403: N_("Not allowed"), 404: N_("Page not found"), 405: N_("Not available this way"),
           409: N_("Conflict"), 413: N_("Too large"), 429: N_("Too many requests"), 500: N_("Something went wrong")}
_OWN_WORDS = {
    400: N_("The request was not understood. Go back, check what you typed and try again."),
    403: N_("Your account cannot open this page. Ask an admin if you need it."),
    404: N_("There is nothing at this address. It may have been deleted, or the link is mistyped."),
    405: N_("This page cannot be opened like that. Use the buttons on the page instead."),
    413: N_("That was too large to accept."),
    429: N_("Too many requests in a short time. Wait a minute and try again."),
    500: N_("Something went wrong on our side. Try again in a moment."),
}


def _description(error: Any, code: int) -> str:
    """The view's own reason, else our words for the code (never Werkzeug's generic sentence)."""
    description = getattr(error, "description", None)
    if not description or description == getattr(type(error), "description", None):
        return gettext(_OWN_WORDS[code]) if code in _OWN_WORDS else str(description or gettext(_OWN_WORDS[500]))
    return str(description)


def render_error(error: Any) -> Any:
    code = getattr(error, "code", 500) or 500
    if code >= 500:
        db.session.rollback()
    if _under_api():
        return http_problem(error)
    description = _description(error, code)
    if _wants_json():
        return jsonify(error=getattr(error, "name", "Error"), detail=description), code
    title = gettext(_TITLES[code]) if code in _TITLES else getattr(error, "name", "Error")
    return render_template("error.html", code=code, title=title, description=description), code


def not_found(error: NotFound) -> Any:
    """What `abort(404, description=str(error))` answered in each view before."""
    return service_problem(error) if _under_api() else render_error(http.NotFound(description=localized(error)))


def state_conflict(error: StateConflict) -> Any:
    return service_problem(error) if _under_api() else render_error(http.Conflict(description=localized(error)))


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, render_error)
    app.register_error_handler(NotFound, not_found)
    app.register_error_handler(StateConflict, state_conflict)
