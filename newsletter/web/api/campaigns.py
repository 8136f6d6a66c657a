"""/api/v1/campaigns (being built)."""
from __future__ import annotations

from .core import resource_blueprint

bp = resource_blueprint("campaigns", "/campaigns", "Campaigns.")
