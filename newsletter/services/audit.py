"""The audit log (being built): `record` appends who did what to the caller's transaction."""
from __future__ import annotations

from typing import Any


def record(action: str, target_type: str = "", target_id: Any = "", **details: Any) -> None:
    """Append one audit event in the caller's transaction (the caller commits). The actor
    (user or API key, and IP) comes from the request the app is serving, else "system"."""
    return None
