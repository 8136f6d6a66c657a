"""The admin pages' forms, one module per noun, and how a service's error lands next to its field."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import flash
from flask_wtf import FlaskForm

from ....services.errors import Conflict
from ....services.errors import ValidationError as ServiceError
from ...i18n import localized

T = TypeVar("T")


def apply_error(form: FlaskForm, exc: Exception, aliases: dict[str, str] | None = None) -> bool:
    """Show a service's ValidationError/Conflict next to its field; False if no field matches."""
    name = (aliases or {}).get(getattr(exc, "field", ""), getattr(exc, "field", ""))
    field = form._fields.get(name)
    if field is None:
        return False
    field.errors = [*field.errors, localized(exc)]
    return True


def saved_or_form_error(form: FlaskForm, action: Callable[[], T], aliases: dict[str, str] | None = None) -> T | None:
    """Run a service call; its ValidationError/Conflict shows next to its field (or as a flash)."""
    try:
        return action()
    except (ServiceError, Conflict) as exc:
        if not apply_error(form, exc, aliases):
            flash(localized(exc), "error")
        return None
