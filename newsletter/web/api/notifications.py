"""/api/v1/notifications (being built)."""
from __future__ import annotations

from .core import resource_blueprint

bp = resource_blueprint("notifications", "/notifications", "Notifications.")
