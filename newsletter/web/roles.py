"""Server-side role enforcement for views."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import abort
from flask_login import current_user, login_required

from ..models import Role


def role_required(role: Role) -> Callable:
    """Require a signed-in, active user whose role is at least `role`."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.role.allows(role):
                abort(403, description=f"This page is for {role.value}s and above; you are signed in as a "
                                       f"{current_user.role.value}. Ask an admin if you need it.")
            return view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]  # a mark the route-walking test reads
        return wrapped

    return decorator
