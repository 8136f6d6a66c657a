"""/api/v1/imports (being built)."""
from __future__ import annotations

from .core import resource_blueprint

bp = resource_blueprint("imports", "/imports", "Imports.")
