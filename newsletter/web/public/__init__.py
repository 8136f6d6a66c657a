"""Pages for subscribers and the public: subscribe, confirm, unsubscribe, preferences, web view."""
from __future__ import annotations

from .pages import bp
from .tracking import bp as tracking_bp

__all__ = ["bp", "tracking_bp"]
