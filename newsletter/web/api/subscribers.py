"""/api/v1/subscribers (being built)."""
from __future__ import annotations

from .core import resource_blueprint

bp = resource_blueprint("subscribers", "/subscribers", "Subscribers.")
