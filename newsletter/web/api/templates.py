"""/api/v1/templates (being built)."""
from __future__ import annotations

from .core import resource_blueprint

bp = resource_blueprint("templates", "/templates", "Templates.")
