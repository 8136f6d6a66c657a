"""The JSON API under /api/v1 (README: "REST API"); `register` binds it to the app."""
from __future__ import annotations

from flask import Flask

from .core import api, http_problem, register_api, service_problem


def register(app: Flask) -> None:
    from . import automations, bounces, campaigns, imports, lists, notifications, segments, subscribers, templates

    register_api(app, [module.bp for module in (lists, subscribers, imports, campaigns, notifications, templates,
                                                        bounces, segments)]
                 + [automations.bp, automations.events_bp])


__all__ = ["api", "http_problem", "register", "service_problem"]
