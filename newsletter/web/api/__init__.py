"""The JSON API under /api/v1 (README: "REST API"); `register` binds it to the app."""
from __future__ import annotations

from flask import Flask

from .. import input_guard, limits
from .core import api, http_problem, register_api


def register(app: Flask) -> None:
    from . import campaigns, imports, lists, notifications, subscribers, templates

    limits.register(app)
    register_api(app, [module.bp for module in (lists, subscribers, imports, campaigns, notifications, templates)])
    input_guard.register(app)  # after the API's key check: an unknown caller gets its 401 first


__all__ = ["api", "http_problem", "register"]
