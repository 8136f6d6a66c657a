"""The JSON API under /api/v1 (README: "REST API"); `register` binds it to the app."""
from __future__ import annotations

from flask import Flask

from .core import api, http_problem, register_api


def register(app: Flask) -> None:
    from . import lists

    register_api(app, [lists.bp])


__all__ = ["api", "http_problem", "register"]
