"""Probes for load balancers and orchestrators."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from ..extensions import csrf, limiter
from ..services import health

bp = Blueprint("health", __name__)
csrf.exempt(bp)
limiter.exempt(bp)


@bp.get("/healthz")
def healthz():
    """The process is alive; says nothing about its dependencies."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Database, broker and Redis reachable: 200; otherwise 503 naming what is down."""
    results = health.readiness()
    down = {name: reason for name, reason in results.items() if reason}
    body: dict[str, Any] = {
        "status": "unavailable" if down else "ok",
        "checks": {name: ("down: " + reason) if reason else "ok" for name, reason in results.items()},
    }
    if down:
        body["down"] = sorted(down)
    return jsonify(body), 503 if down else 200
