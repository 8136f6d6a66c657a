"""Server-side role enforcement for views."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_babel import gettext
from flask_login import current_user, login_required

from ..models import Role
from .i18n import value_label


def role_required(role: Role) -> Callable:
    """Require a signed-in, active user whose role is at least `role`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.role.allows(role):
                abort(403, description=gettext(
                    "This page needs the role %(needed)s or above; you are signed in as %(role)s. Ask an admin "
                    "if you need it.", needed=value_label(role.value), role=value_label(current_user.role.value)))
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # a mark the route-walking test reads
        return wrapped

    return decorator
