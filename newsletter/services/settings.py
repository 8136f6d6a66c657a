"""Settings an admin edits on /admin/settings: a database row overrides the environment's value.

Senders read them on every batch, so `effective()` answers from a per-process snapshot
(services/versioned.py): a save announces a new version through Redis (VERSION_KEY), and every
process re-reads the small table within about a second, without a restart.

The SMTP password is stored encrypted (Fernet, key derived from SECRET_KEY by HKDF) and is
never returned to the page; only senders see it, through `effective().smtp`.
"""
from __future__ import annotations

import base64
import functools
import logging
import re
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from typing import Any

import redis
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import delete, select

from ..extensions import db
from ..models.setting import Setting
from ..sending import pools
from ..sending import smtp as transport
from ..sending.errors import SmtpFailure
from ..sending.limiter import KEY, NOTIFY_KEY, RateLimiter
from ..sending.smtp import SmtpSettings
from . import audit
from .addresses import normalize_email
from .errors import ValidationError
from .messages import N_, Message
from .versioned import Versioned

log = logging.getLogger(__name__)

VERSION_KEY = "newsletter:settings:version"
UNDECRYPTABLE = ("The stored SMTP password cannot be decrypted: SECRET_KEY has changed since it was saved. "
                 "Enter the password again on the Settings page.")


# What the page edits ----------------------------------------------------------------------------

TLS_MODES = {"none": N_("None (plain SMTP)"), "starttls": N_("STARTTLS"), "tls": N_("Implicit TLS (SMTPS)")}
SECTIONS = {"smtp": N_("SMTP server"), "sender": N_("Sender"), "sending": N_("Sending"), "tracking": N_("Tracking"),
            "bounces": N_("Bounces")}
TRACKING_MODES = {"off": N_("Off: no pixel, links as written"),
                  "anonymous": N_("Anonymous: counts per campaign and link, nobody named"),
                  "individual": N_("Individual: who opened and clicked (needs your subscribers' consent)")}
CHOICES = {"MAIL_TLS": TLS_MODES, "TRACKING_DEFAULT": TRACKING_MODES}
SECRET = "secret"
DEFAULT_POOL = pools.DEFAULT
_POOL = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Spec:
    name: str
    label: str
    section: str
    kind: type | str  # int, float, str, "choice", "secret", "sender", "pool", "throttles"
    low: float = 0
    high: float = 0
    help: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in (int, float)


SPECS = (
    Spec("MAIL_SERVER", N_("Host"), "smtp", str, help=N_("Name or address of the SMTP server.")),
    Spec("MAIL_PORT", N_("Port"), "smtp", int, 1, 65535, N_("Usually 587 (STARTTLS), 465 (implicit TLS) or 25.")),
    Spec("MAIL_TLS", N_("TLS"), "smtp", "choice"),
    Spec("MAIL_USERNAME", N_("Username"), "smtp", str, help=N_("Leave empty when the server needs no login.")),
    Spec("MAIL_PASSWORD", N_("Password"), "smtp", SECRET, help=N_("Stored encrypted; never shown again.")),
    Spec("MAIL_DEFAULT_SENDER", N_("Default from address"), "sender", "sender",
         help=N_("From of notifications and system mail, and new campaigns' default.")),
    Spec("SEND_RATE", N_("Campaign rate (messages/s)"), "sending", float, 0.01, 100_000,
         N_("For every worker together.")),
    Spec("NOTIFY_RATE", N_("Notification rate (messages/s)"), "sending", float, 0.01, 100_000,
         N_("Transactional mail's own limit.")),
    Spec("SEND_MAX_ATTEMPTS", N_("Attempts per message"), "sending", int, 1, 100,
         N_("A temporary failure is retried until this many attempts.")),
    Spec("SEND_RETRY_BASE", N_("First retry after (s)"), "sending", float, 0.1, 86_400, N_("Doubles at each attempt.")),
    Spec("SEND_RETRY_MAX", N_("Longest retry delay (s)"), "sending", float, 0.1, 7 * 86_400),
    Spec("SEND_PAUSE_AFTER_ERRORS", N_("Pause a campaign after (failures in a row)"), "sending", int, 1, 1_000_000,
         N_("Temporary failures in a row, across every worker.")),
    Spec("NOTIFY_POOL", N_("Pool of notifications"), "sending", "pool",
         help=N_("The sending servers' pool of transactional mail (Settings → Sending servers).")),
    Spec("DOMAIN_THROTTLES", N_("Per-domain limits"), "sending", "throttles",
         help=N_("Messages per recipient domain, over every server: gmail.com=20/s, outlook.com=600/h "
              "(units s, m, h, d). Empty: none.")),
    Spec("TRACKING_DEFAULT", N_("Tracking of new campaigns"), "tracking", "choice",
         help=N_("Each campaign can change it before it is sent.")),
    Spec("BOUNCE_SOFT_LIMIT", N_("Soft bounces before suppressing"), "bounces", int, 1, 100,
         N_("A hard bounce suppresses at once; soft ones (mailbox full, server busy) after this many...")),
    Spec("BOUNCE_SOFT_DELIVERIES", N_("... within the last deliveries"), "bounces", int, 1, 1000,
         N_("... among the subscriber's most recent messages,")),
    Spec("BOUNCE_SOFT_DAYS", N_("... or within days"), "bounces", int, 1, 3650,
         N_("... or within this many days. Each message counts once.")),
)
NAMES = tuple(spec.name for spec in SPECS)


def env_default(spec: Spec, config: dict) -> Any:
    """The value the environment (app config) gives `spec`."""
    if spec.name == "MAIL_TLS":
        return "tls" if config.get("MAIL_USE_SSL") else "starttls" if config.get("MAIL_USE_TLS") else "none"
    value: Any = config.get(spec.name)
    if spec.kind in (int, float):
        return spec.kind(value)
    if spec.kind == "pool":
        return value or DEFAULT_POOL
    return value or None  # an empty username or password is no login


def parse(spec: Spec, raw: Any) -> Any:
    """`raw` (a form's text or a typed value) as the setting's type; ValidationError naming it."""
    text = "" if raw is None else str(raw).strip()
    if "\r" in text or "\n" in text:
        raise ValidationError(spec.name, "Must be on one line.")
    if spec.kind in (int, float):
        try:
            value = spec.kind(text)
        except ValueError:
            raise ValidationError(spec.name, Message("Enter a whole number.") if spec.kind is int
                                  else Message("Enter a number.")) from None
        if not spec.low <= value <= spec.high:
            raise ValidationError(spec.name, "Must be between %(low)s and %(high)s.",
                                             low=format(spec.low, 'g'), high=format(spec.high, 'g'))
        return value
    if spec.kind == "choice":
        if text not in CHOICES[spec.name]:
            raise ValidationError(spec.name, "Choose one of: %(value)s.", value=', '.join(CHOICES[spec.name].values()))
        return text
    if spec.kind == "sender":
        return _sender(text)
    if spec.kind == "pool":
        if not _POOL.match(text or DEFAULT_POOL):
            raise ValidationError(spec.name, "A pool's name: 1 to 64 of a-z, 0-9, '.', '_' or '-'.")
        return text or DEFAULT_POOL
    if spec.kind == "throttles":
        try:
            return pools.format_throttles(pools.parse_throttles(text)) or None
        except ValueError as exc:
            raise ValidationError(spec.name, str(exc)) from None
    if spec.name == "MAIL_SERVER" and (not text or " " in text or len(text) > 255):
        raise ValidationError(spec.name, "Enter a host name or IP address.")
    if len(text) > 255:
        raise ValidationError(spec.name, "At most 255 characters.")
    return text or None


def _sender(text: str) -> str:
    name, address = parseaddr(text)
    if not address or "@" not in address:
        raise ValidationError("MAIL_DEFAULT_SENDER", "Enter an address such as Newsletter <news@example.com>.")
    address = normalize_email(address, "MAIL_DEFAULT_SENDER")
    return formataddr((name, address)) if name else address


class SettingsInvalid(ValidationError):
    """Every refused field at once (`field`/`message` name the first, for generic handlers)."""

    def __init__(self, errors: dict[str, Message]) -> None:
        first = next(iter(errors))
        super().__init__(first, errors[first])
        self.errors = errors


@dataclass(frozen=True)
class Snapshot:
    values: dict[str, Any]  # every spec's name -> its typed effective value (the password decrypted)
    overridden: frozenset[str]  # names whose value comes from the database
    problems: dict[str, str]  # name -> why the stored value could not be used
    smtp: SmtpSettings

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


# Encryption -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"newsletter.settings",
               info=b"smtp-password-v1").derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(plain: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(plain.encode()).decode()


def decrypt(token: str, secret_key: str) -> str:
    """The plain text; InvalidToken if SECRET_KEY is not the one it was encrypted with."""
    return _fernet(secret_key).decrypt(token.encode()).decode()


# Reading --------------------------------------------------------------------------------------

def _stored() -> dict[str, Any]:
    # Its own short connection: the caller's session may be mid-batch, and no transaction may
    # stay open across SMTP I/O.
    with db.engine.connect() as conn:
        return {key: value for key, value in conn.execute(select(Setting.key, Setting.value))}


def _load(config: dict) -> Snapshot:
    stored = _stored()
    values = {spec.name: env_default(spec, config) for spec in SPECS}
    overridden, problems = set(), {}
    for spec in SPECS:
        if spec.name not in stored:
            continue
        raw = stored[spec.name]
        if spec.kind == SECRET:
            token_text = (raw or {}).get("encrypted")
            try:
                raw = decrypt(token_text, config["SECRET_KEY"]) if token_text else None
            except (InvalidToken, ValueError, TypeError):
                problems[spec.name] = UNDECRYPTABLE
                log.error("settings: %s", UNDECRYPTABLE)
                raw = None
        values[spec.name] = raw
        overridden.add(spec.name)
    tls = values["MAIL_TLS"]
    smtp = SmtpSettings(values["MAIL_SERVER"], int(values["MAIL_PORT"]), float(config["MAIL_TIMEOUT"]),
                        use_tls=tls == "starttls", use_ssl=tls == "tls",
                        username=values["MAIL_USERNAME"] or None, password=values["MAIL_PASSWORD"] or None)
    return Snapshot(values, frozenset(overridden), problems, smtp)


_copy: Versioned[Snapshot] = Versioned("settings", VERSION_KEY, lambda: _load(current_app.config))


def effective(fresh: bool = False) -> Snapshot:
    """Database values over environment values; cheap enough to call per batch (see module doc)."""
    return _copy.get(fresh)


def get(name: str) -> Any:
    return effective().values[name]


def smtp() -> SmtpSettings:
    return effective().smtp


def domain_throttles() -> pools.Throttles:
    """DOMAIN_THROTTLES, parsed (once per value)."""
    return _throttles(get("DOMAIN_THROTTLES") or "")


@functools.lru_cache(maxsize=8)
def _throttles(text: str) -> pools.Throttles:
    try:
        return pools.parse_throttles(text)
    except ValueError:
        log.error("settings: DOMAIN_THROTTLES %r is not valid; no per-domain limits", text)
        return {}


def default_sender(current: Snapshot | None = None) -> tuple[str, str]:
    """(name, address) of the default From (in `current`, else the effective settings)."""
    name, address = parseaddr((current or effective())["MAIL_DEFAULT_SENDER"])
    return name, address or "newsletter@localhost"


def check_smtp(timeout: float = 5.0) -> str | None:
    """Open a session with the effective settings as a send would (connect, TLS, login, QUIT,
    at most `timeout` seconds a step): None if the server accepts us, else why not."""
    current = effective(fresh=True)
    if "MAIL_PASSWORD" in current.problems:
        return current.problems["MAIL_PASSWORD"]
    try:
        transport.verify(current.smtp, timeout)
    except SmtpFailure as failure:
        return f"{failure.code or ''} {failure.message}".strip()
    return None


# Writing --------------------------------------------------------------------------------------

CLEAR = object()  # MAIL_PASSWORD's value for "no password" (unlike "", which keeps the stored one)


def save(changes: dict[str, Any], user_id: int | None) -> list[str]:
    """Apply `changes` (name -> new value, or None: back to the environment's) in one transaction.

    A value equal to the current one is skipped, so a whole form can be posted. For
    MAIL_PASSWORD, "" keeps the stored one and CLEAR stores "no password".
    Returns the changed names; raises SettingsInvalid naming every refused field.
    """
    current = effective(fresh=True)
    config = current_app.config
    specs = {spec.name: spec for spec in SPECS}
    resets, typed, errors = [], {}, {}
    for name, raw in changes.items():
        spec = specs.get(name)
        if spec is None:
            raise ValidationError(name, "%(name)s is not a setting.", name=name)
        if raw is None:
            resets.append(name)
        elif spec.kind == SECRET:
            if raw is CLEAR or raw:
                typed[name] = None if raw is CLEAR else str(raw)
        elif spec.kind in (str, "sender") and str(raw).strip() == (current.values[name] or ""):
            continue  # unchanged text: not re-validated (an environment value may be laxer)
        else:
            try:
                typed[name] = parse(spec, raw)
            except ValidationError as exc:
                errors[name] = exc.text
    merged = {**current.values, **typed, **{n: env_default(specs[n], config) for n in resets}}
    if not errors.keys() & {"SEND_RETRY_BASE", "SEND_RETRY_MAX"} \
            and merged["SEND_RETRY_MAX"] < merged["SEND_RETRY_BASE"]:
        errors["SEND_RETRY_MAX"] = Message("Must not be shorter than the first retry delay.")
    if errors:
        raise SettingsInvalid(errors)

    resets = [n for n in resets if n in current.overridden]
    updates = {n: v for n, v in typed.items() if v != current.values[n] or n in current.problems}
    changed = sorted(set(resets) | set(updates))
    if not changed:
        return []
    if resets:
        db.session.execute(delete(Setting).where(Setting.key.in_(resets)))
    for name, value in updates.items():
        stored: Any = value
        if specs[name].kind == SECRET:
            stored = {"encrypted": encrypt(value, config["SECRET_KEY"]) if value else None}
        row = db.session.get(Setting, name) or Setting(key=name)
        row.value, row.updated_by_id = stored, user_id
        db.session.add(row)
    audit.record("settings.changed", "settings", "", changed=changed)  # names only: never a secret's value
    db.session.commit()
    _published(changed)
    return changed


def _published(changed: list[str]) -> None:
    """Tell every process: a new version token, and the rate buckets' runtime override at once."""
    snapshot = effective(fresh=True)
    buckets = {"SEND_RATE": KEY, "NOTIFY_RATE": NOTIFY_KEY}
    try:
        for name in set(changed) & set(buckets):
            bucket = RateLimiter(_copy.client, snapshot[name], prefix=buckets[name])
            bucket.set_rate(snapshot[name] if name in snapshot.overridden else None)
    except redis.RedisError as exc:  # saved all the same: the buckets keep their rate until Redis is back
        log.warning("settings: saved, but could not set the send rate in Redis (%s)", exc)
    _copy.announce()
    effective(fresh=True)
