"""The audit log: `record` appends who did what to the caller's transaction; `search` reads it."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from flask import g, has_app_context
from sqlalchemy import func, select

from ..extensions import db
from ..models import ApiKey, AuditEvent
from .messages import N_
from .text import escape_like

if TYPE_CHECKING:
    from ..models import User

SYSTEM = "system"
PAGE_SIZE = 50

# Every action some service records, with the words the log page shows for it (marked for the
# catalog with N_, translated where shown).
ACTIONS: dict[str, str] = {
    "user.login": N_("signed in"),
    "user.login_failed": N_("failed sign-in"),
    "user.logout": N_("signed out"),
    "user.created": N_("user created"),
    "user.role_changed": N_("role changed"),
    "user.deactivated": N_("user deactivated"),
    "user.reactivated": N_("user reactivated"),
    "user.password_reset": N_("password reset"),
    "campaign.sent": N_("campaign sent"),
    "campaign.scheduled": N_("campaign scheduled"),
    "campaign.unscheduled": N_("campaign unscheduled"),
    "campaign.paused": N_("campaign paused"),
    "campaign.resumed": N_("campaign resumed"),
    "campaign.cancelled": N_("campaign cancelled"),
    "campaign.retried": N_("failed deliveries retried"),
    "subscriber.deleted": N_("subscriber deleted"),
    "subscriber.erased": N_("subscriber erased"),
    "subscriber.links_revoked": N_("email links revoked"),
    "suppression.lifted": N_("suppression lifted"),
    "import.started": N_("import started"),
    "api_key.created": N_("API key created"),
    "api_key.revoked": N_("API key revoked"),
    "webhook.created": N_("webhook created"),
    "webhook.deleted": N_("webhook deleted"),
    "settings.changed": N_("settings changed"),
}
TARGET_TYPES = ("user", "campaign", "subscriber", "suppression", "import", "api_key", "webhook", "settings")


def set_actor(label: str) -> None:
    """Name who acts outside a web request or API call (a script, a shell); unnamed, it is "system".

    Nothing in the package calls it: the flask CLI commands (create-admin, API keys) record as "system".
    """
    g.audit_actor = label


def _plain(value: Any) -> Any:
    """A JSON-storable copy of a detail value."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key_label(key_id: int) -> str:
    key = db.session.get(ApiKey, key_id)
    return f"API key {key.prefix}… ({key.name})" if key else f"API key #{key_id}"


def _actor(by_user: User | None) -> dict[str, Any]:
    """Who acts, read when the event is recorded: the API key hook runs after the app's own
    `before_request`, so nothing is copied at the start of the request."""
    if by_user is not None:  # signing in: the request has no user yet
        return {"user_id": by_user.id, "actor": by_user.email}
    if not has_app_context():
        return {"actor": SYSTEM}
    key_id = g.get("api_key_id")
    if key_id:
        return {"api_key_id": key_id, "actor": _key_label(key_id)}
    return {"user_id": g.get("audit_user_id"), "actor": g.get("audit_actor") or SYSTEM}


def record(action: str, target_type: str = "", target_id: Any = "", *, by_user: User | None = None,
           with_ip: bool = True, **details: Any) -> AuditEvent:
    """Append one audit event in the caller's transaction (the caller commits). The actor
    (user or API key, and IP) comes from the request the app is serving, else "system".
    `by_user` names the actor when the request has none yet (signing in)."""
    actor = _actor(by_user)
    ip = g.get("audit_ip", "") if with_ip and has_app_context() else ""
    event = AuditEvent(
        action=action, target_type=target_type, target_id="" if target_id is None else str(target_id)[:64],
        details=_plain(details), ip=ip[:64],
        user_id=actor.get("user_id"), api_key_id=actor.get("api_key_id"), actor=actor["actor"][:254])
    db.session.add(event)
    return event


# Reading the log ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    action: str = ""        # an action, or "campaign.*" for a family
    actor: str = ""         # a part of the actor's label (email, key name, "system")
    target_type: str = ""
    target_id: str = ""
    since: date | None = None  # UTC days, both inclusive
    until: date | None = None


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def conditions(filters: Filters) -> list[Any]:
    where: list[Any] = []
    if filters.action.endswith(".*"):
        where.append(AuditEvent.action.like(escape_like(filters.action[:-1]) + "%", escape="\\"))
    elif filters.action:
        where.append(AuditEvent.action == filters.action)
    if filters.actor.strip():
        needle = escape_like(filters.actor.strip().lower())
        where.append(func.lower(AuditEvent.actor).like(f"%{needle}%", escape="\\"))
    if filters.target_type:
        where.append(AuditEvent.target_type == filters.target_type)
    if filters.target_id.strip():
        where.append(AuditEvent.target_id == filters.target_id.strip())
    if filters.since:
        where.append(AuditEvent.at >= _day_start(filters.since))
    if filters.until:
        where.append(AuditEvent.at < _day_start(filters.until + timedelta(days=1)))
    return where


def search(filters: Filters, before: int | None = None, limit: int = PAGE_SIZE) -> tuple[list[AuditEvent], int | None]:
    """Newest first, a page at a time: (events, the id to pass as `before` for the next page)."""
    query = select(AuditEvent).where(*conditions(filters)).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].id if more and rows else None)
