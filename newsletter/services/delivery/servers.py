"""Sending servers (models/sending_server.py): saving them, and the pools senders route through.

The pool "default" always holds the server of the Settings page (MAIL_* and its SMTP
section) under the name "default", plus any enabled row whose pool is "default": with no
rows, everything sends as before. Senders call `pool(name)` per batch or notification; it
answers from a per-process copy of the table, re-read within about a second of a save anywhere
(VERSION_KEY; services/versioned.py). Passwords are encrypted
like the SMTP setting's and never leave this module but inside SmtpSettings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from flask import current_app
from sqlalchemy import func, select

from ...extensions import db
from ...models import SendingServer
from ...models.base import utcnow
from ...sending import pools
from ...sending import smtp as transport
from ...sending.errors import SmtpFailure
from ...sending.pools import DEFAULT, Server
from ...sending.smtp import SmtpSettings
from .. import audit, settings
from ..errors import Conflict, NotFound, ValidationError
from ..messages import Message
from ..versioned import Versioned
from .retries import retry_delay

VERSION_KEY = "newsletter:servers:version"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
TLS_MODES = settings.TLS_MODES


# Reading (senders) ------------------------------------------------------------------------------

def _smtp_of(row: Any, secret_key: str, timeout: float) -> SmtpSettings:
    password = None
    if row.password_encrypted:
        try:
            password = settings.decrypt(row.password_encrypted, secret_key)
        except (InvalidToken, ValueError, TypeError):
            password = None  # SECRET_KEY changed: the login fails and says so; the page asks for it again
    return SmtpSettings(row.host, row.port, timeout, use_tls=row.tls == "starttls", use_ssl=row.tls == "tls",
                        username=row.username or None, password=password)


def _load(config: dict) -> list[Server]:
    # Its own short connection: the caller's session may be mid-batch (no transaction across SMTP I/O).
    with db.engine.connect() as conn:
        rows = conn.execute(select(SendingServer.__table__).where(SendingServer.enabled.is_(True))
                            .order_by(SendingServer.pool, SendingServer.name)).all()
    timeout = float(config["MAIL_TIMEOUT"])
    return [Server(row.name, row.pool, _smtp_of(row, config["SECRET_KEY"], timeout), row.per_second,
                   row.per_hour, row.per_day) for row in rows]


_copy: Versioned[list[Server]] = Versioned("sending servers", VERSION_KEY, lambda: _load(current_app.config))


def _enabled() -> list[Server]:
    return _copy.get()


def builtin() -> Server:
    """The Settings page's server: the pool "default"'s own member, with no limits of its own."""
    return Server(DEFAULT, DEFAULT, settings.smtp())


def pool(name: str) -> list[Server]:
    """The enabled servers of pool `name` (the Settings page's server first in "default"); [] if none."""
    members = [s for s in _enabled() if s.pool == name]
    return [builtin(), *members] if name == DEFAULT else members


def route(name: str, ceiling: float) -> pools.Route:
    """The pool's servers in turn for one batch or notification, under the global rate `ceiling`."""
    down_seconds = int(max(1, min(pools.DOWN_SECONDS, settings.get("SEND_RETRY_BASE"))))
    return pools.Route(pool(name), pools.state(current_app.config["REDIS_URL"]), ceiling, down_seconds)


def retry_at(route: pools.Route) -> datetime:
    """When messages no server of the route could take should be tried again."""
    if route.up():  # every server up is at its own limit
        return utcnow() + timedelta(seconds=max(1.0, route.refused_wait))
    return utcnow() + timedelta(seconds=retry_delay(1))  # every server down: the usual backoff


def why_not(route: pools.Route) -> str:
    """Why no server of the route took the messages (shown with the waiting rows)."""
    if not route.servers:
        return "The pool has no enabled sending server."
    if route.up():
        return "Every server of the pool is at its limit."
    return route.last_failure or "No server of the pool can be reached."


def pool_names() -> list[str]:
    """Every pool an enabled or disabled server names, "default" first."""
    names = set(db.session.scalars(select(SendingServer.pool).distinct())) - {DEFAULT}
    return [DEFAULT, *sorted(names)]


def check_pool(name: Any, field: str = "pool") -> str:
    """A pool's name as given, or ValidationError on `field` when no enabled server is in it."""
    text = str(name or DEFAULT).strip().lower()
    if text == DEFAULT:
        return text
    if not db.session.scalar(select(func.count()).select_from(SendingServer).where(
            SendingServer.pool == text, SendingServer.enabled.is_(True))):
        raise ValidationError(field, "No enabled sending server is in the pool %(text)r. Pools: %(value)s.",
                                     text=text, value=', '.join(pool_names()))
    return text


# Saving (admin) -----------------------------------------------------------------------------------

FIELDS = ("name", "pool", "host", "port", "tls", "username", "password", "per_second", "per_hour", "per_day",
          "enabled")


def all_servers() -> list[SendingServer]:
    return list(db.session.scalars(select(SendingServer).order_by(SendingServer.pool, SendingServer.name)))


def get(server_id: int) -> SendingServer:
    row = db.session.get(SendingServer, server_id)
    if row is None:
        raise NotFound("sending server", server_id)
    return row


def _number(values: dict[str, Any], name: str, kind: type, high: float) -> Any:
    raw = values.get(name)
    if raw is None or str(raw).strip() == "":
        return kind(0)
    try:
        value = kind(str(raw).strip())
    except ValueError:
        raise ValidationError(name, Message("Enter a whole number.") if kind is int
                              else Message("Enter a number.")) from None
    if not 0 <= value <= high:
        raise ValidationError(name, "Must be between 0 and %(high)s (0: no limit of its own).", high=format(high, 'g'))
    return value


def _clean(values: dict[str, Any], current: SendingServer | None) -> dict[str, Any]:
    """The typed values, each checked; ValidationError naming the first bad field."""
    name = str(values.get("name") or "").strip().lower()
    if not _NAME.match(name):
        raise ValidationError("name", "1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.")
    if name == DEFAULT:
        raise ValidationError("name", "\"default\" is the Settings page's server: choose another name.")
    pool_name = str(values.get("pool") or DEFAULT).strip().lower()
    if not _NAME.match(pool_name):
        raise ValidationError("pool", "1 to 64 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.")
    host = str(values.get("host") or "").strip()
    if not host or " " in host or len(host) > 255:
        raise ValidationError("host", "Enter a host name or IP address.")
    try:
        port = int(str(values.get("port") or "").strip())
    except ValueError:
        raise ValidationError("port", "Enter a whole number, usually 587, 465 or 25.") from None
    if not 1 <= port <= 65535:
        raise ValidationError("port", "Must be between 1 and 65535.")
    tls = str(values.get("tls") or "starttls")
    if tls not in TLS_MODES:
        raise ValidationError("tls", "Choose one of: %(value)s.", value=', '.join(TLS_MODES.values()))
    username = str(values.get("username") or "").strip()
    if len(username) > 255 or "\n" in username or "\r" in username:
        raise ValidationError("username", "At most 255 characters, on one line.")
    cleaned = dict(name=name, pool=pool_name, host=host, port=port, tls=tls, username=username,
                   per_second=_number(values, "per_second", float, 100_000),
                   per_hour=_number(values, "per_hour", int, 100_000_000),
                   per_day=_number(values, "per_day", int, 1_000_000_000),
                   enabled=bool(values.get("enabled", current.enabled if current else True)))
    password = values.get("password")
    if password is settings.CLEAR:
        cleaned["password_encrypted"] = ""
    elif password:
        if len(str(password)) > 255:
            raise ValidationError("password", "At most 255 characters.")
        cleaned["password_encrypted"] = settings.encrypt(str(password), current_app.config["SECRET_KEY"])
    taken = db.session.scalar(select(SendingServer.id).where(SendingServer.name == name))
    if taken is not None and (current is None or taken != current.id):
        raise Conflict("name", "A sending server named %(name)r already exists.", name=name)
    return cleaned


def save(values: dict[str, Any], server_id: int | None = None) -> SendingServer:
    """Create (no `server_id`) or update a server; a password of "" keeps the stored one,
    settings.CLEAR removes it. All fields checked before anything is written."""
    current = get(server_id) if server_id is not None else None
    cleaned = _clean(values, current)
    row = current or SendingServer()
    for key, value in cleaned.items():
        setattr(row, key, value)
    if current is None:
        db.session.add(row)
    db.session.flush()
    audit.record("sending_server.saved", "sending_server", row.id, name=row.name, pool=row.pool,
                 created=current is None)
    db.session.commit()
    _changed()
    return row


def set_enabled(server_id: int, enabled: bool) -> SendingServer:
    row = get(server_id)
    row.enabled = enabled
    audit.record("sending_server.enabled" if enabled else "sending_server.disabled", "sending_server", row.id,
                 name=row.name)
    db.session.commit()
    _changed()
    return row


def delete(server_id: int) -> str:
    """Remove a disabled server (its name is returned). An enabled one is refused: disabling it
    first lets the batches that were routed through it finish, and nothing new goes its way."""
    row = get(server_id)
    if row.enabled:
        raise Conflict("enabled", "Disable %(name)s first: batches may still be going through it.", name=row.name)
    audit.record("sending_server.deleted", "sending_server", row.id, name=row.name, pool=row.pool, host=row.host)
    db.session.delete(row)
    db.session.commit()
    _changed()
    return row.name


def _changed() -> None:
    """Every process re-reads the table within about a second."""
    _copy.announce()


# State and checks (admin) -------------------------------------------------------------------------

def verify(server_id: int | None, timeout: float = 5.0) -> str | None:
    """Connect, TLS and log in as a send would (None: accepted; else why not). None id: the Settings server."""
    config = current_app.config
    if server_id is None:
        problem, server = settings.check_smtp(timeout), builtin()
    else:
        row = get(server_id)
        server = Server(row.name, row.pool, _smtp_of(row, config["SECRET_KEY"], float(config["MAIL_TIMEOUT"])))
        try:
            transport.verify(server.smtp, timeout)
            problem = None
        except SmtpFailure as failure:
            problem = f"{failure.code or ''} {failure.message}".strip()
    if problem is None:
        pools.state(config["REDIS_URL"]).mark_up(server)  # it answers: usable again at once
    return problem


@dataclass(frozen=True)
class ServerState:
    state: str  # up, down, throttled, disabled
    why: str  # a down server's last error
    rate: float  # messages/s it may send now (0: the global rate only)
    penalty: float  # 1: full rate


def states(rows: list[SendingServer]) -> dict[str, ServerState]:
    """name -> live state, for the admin page ("default": the Settings page's server)."""
    shared = pools.state(current_app.config["REDIS_URL"])
    ceiling = float(settings.get("SEND_RATE"))
    servers = [builtin()] + [Server(r.name, r.pool, SmtpSettings(r.host, r.port), r.per_second, r.per_hour,
                                    r.per_day) for r in rows]
    down = shared.down([s.name for s in servers])
    enabled = {r.name: r.enabled for r in rows}
    found = {}
    for server in servers:
        penalty = shared.limiter(server, ceiling).penalty()
        rate = min(server.per_second or ceiling, ceiling) * penalty
        state = ("disabled" if not enabled.get(server.name, True) else "down" if server.name in down
                 else "throttled" if penalty < 1 else "up")
        found[server.name] = ServerState(state, down.get(server.name, ""), rate, penalty)
    return found
