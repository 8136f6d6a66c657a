"""Refuses request input no view can use, before any view runs: one rule for every route.

A NUL character in a query parameter, form field or path segment is a 400 naming it (PostgreSQL
cannot store or even compare one); an id in the path that no INTEGER column can hold is a 404.
Without this each view would have to remember both, and the ones that forget answered 500.
"""
from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from flask_babel import gettext as _
from werkzeug.exceptions import BadRequest

from ..services.numbers import MAX_ID

NUL = "\x00"


class NulCharacter(BadRequest):
    """A 400 whose `data` names the field, so the API's problem+json lists it in `errors`."""

    def __init__(self, field: str) -> None:
        message = "Must not contain NUL characters."
        super().__init__(_("The field “%(field)s” contains a NUL character, which is never valid input.",
                           field=field))
        self.data = {"messages": {field: [message]}, "message": self.description}


def _first_nul(values: Any) -> str | None:
    for name, value in values.items(multi=True) if hasattr(values, "getlist") else values.items():
        if NUL in name or (isinstance(value, str) and NUL in value):
            return name.replace(NUL, "\\0")
    return None


def refuse_nul() -> None:
    sources = [request.view_args or {}, request.args]
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        sources.append(request.form)
    for source in sources:
        if (name := _first_nul(source)) is not None:
            raise NulCharacter(name)


def ids_in_range() -> None:
    """An integer path segment beyond any row's id names nothing: 404, not a database error."""
    if any(isinstance(value, int) and not 0 <= value <= MAX_ID for value in (request.view_args or {}).values()):
        abort(404, description=_("There is no such id."))


def register(app: Flask) -> None:
    app.before_request(refuse_nul)
    app.before_request(ids_in_range)
