"""Pages for subscribers and the public: subscribe, confirm, unsubscribe, preferences, web view."""
from __future__ import annotations

from .pages import bp

__all__ = ["bp"]
