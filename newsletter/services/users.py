"""Accounts: sign-in (throttled per account), create and manage users, make sure an admin exists."""
from __future__ import annotations

import hashlib
import math
import secrets
import time

from flask import current_app
from limits import RateLimitItem, parse
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db, limiter
from ..models import Role, User
from ..models.base import utcnow
from . import addresses, audit
from .errors import NotFound, ValidationError

MIN_PASSWORD_LENGTH = 10
# Failed sign-ins one account may take, from any number of addresses, before it is locked
# for the rest of the window. The per-IP limit alone lets an attacker rotating IPs guess on.
LOGIN_ACCOUNT_LIMIT = "5 per 15 minutes"
# Checked against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """An account change was refused; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class LoginThrottled(Exception):
    """Too many failed sign-ins for this email; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed sign-ins; retry in {retry_after} s.")
        self.retry_after = retry_after


def normalize_email(raw: str) -> str:
    try:
        return addresses.normalize_email(raw)
    except ValidationError as exc:
        raise AccountError("email", exc.message) from None


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def get(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.active.desc(), func.lower(User.email))))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password", f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def create_user(email: str, password: str, role: Role = Role.VIEWER, name: str = "") -> User:
    email = normalize_email(email)
    _check_password(password)
    if find_by_email(email):
        raise AccountError("email", f"A user with the email {email} already exists.")
    user = User(email=email, name=(name or "").strip()[:200], role=role, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", "user", user.id, email=email, role=role)
    db.session.commit()
    return user


def invite(email: str, name: str = "", role: Role = Role.VIEWER, password: str = "") -> tuple[User, str | None]:
    """Create a user; without a password one is generated and returned (to be shown once)."""
    generated = None if password else generate_password()
    return create_user(email, password or generated, role, name), generated


def _end_sessions(user: User) -> None:
    """Every session and "keep me signed in" cookie of `user` ends at its next request: both
    carry the user id with the session version (User.get_id), which no longer matches."""
    user.session_version = (user.session_version or 0) + 1


def sign_out(user_id: int) -> None:
    """Signing out ends the user's sessions on every device, so a copied or left-behind session
    or remember cookie is worthless afterwards (the cookies themselves live in the browser)."""
    user = get(user_id)
    _end_sessions(user)
    audit.record("user.logout", "user", user.id, email=user.email)
    db.session.commit()


def set_password(user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = generate_password_hash(password)
    _end_sessions(user)  # sessions opened with the old password end
    audit.record("user.password_reset", "user", user.id, email=user.email)
    db.session.commit()


def reset_password(user_id: int, password: str = "") -> str | None:
    """A new password (given, or generated and returned to be shown once)."""
    generated = None if password else generate_password()
    set_password(get(user_id), password or generated)
    return generated


def create_or_reset_admin(email: str, password: str) -> tuple[User, bool]:
    """Create an admin, or make an existing account an active admin with this password."""
    user = find_by_email(normalize_email(email))
    if user is None:
        return create_user(email, password, Role.ADMIN, name="Admin"), True
    _check_password(password)
    user.role, user.active = Role.ADMIN, True
    set_password(user, password)
    return user, False


def ensure_admin(email: str = "admin@example.com") -> str | None:
    """Create a first admin if there is none; return its generated password, or None."""
    if db.session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1)) is not None:
        return None
    password = generate_password()
    create_or_reset_admin(email, password)
    return password


# Role and active changes: an admin never locks themself or everyone out ----------------------

def _keeps_an_admin(user: User, by_user_id: int | None, field: str, verb: str) -> None:
    """Refuse when `user` is the acting admin, or the last active one.

    The active admins' rows are locked first (PostgreSQL), so two admins demoting each other
    at the same moment cannot both succeed and leave none.
    """
    if user.id == by_user_id:
        raise AccountError(field, f"You cannot {verb} yourself. Ask another admin to do it.")
    admins = db.session.scalars(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
                                .with_for_update()).all()
    if user.id in admins and len(admins) == 1:
        raise AccountError(field, f"{user.email} is the last active admin. Make another user an admin first.")


def change_role(user_id: int, role: Role, by_user_id: int | None = None) -> User:
    user = get(user_id)
    if user.role == role:
        return user
    if user.role == Role.ADMIN:
        _keeps_an_admin(user, by_user_id, "role", "demote")
    before, user.role = user.role, role
    audit.record("user.role_changed", "user", user.id, email=user.email, before=before, after=role)
    db.session.commit()
    return user


def set_active(user_id: int, active: bool, by_user_id: int | None = None) -> User:
    """Deactivating ends the user's sessions at their next request, for good (`session_version`)."""
    user = get(user_id)
    if user.active == active:
        return user
    if not active:
        _keeps_an_admin(user, by_user_id, "active", "deactivate")
        _end_sessions(user)  # stays ended after a reactivation
    user.active = active
    audit.record("user.reactivated" if active else "user.deactivated", "user", user.id, email=user.email)
    db.session.commit()
    return user


# Signing in -----------------------------------------------------------------------------------

def _login_limit() -> tuple[RateLimitItem, tuple[str, ...]]:
    """The per-account failure limit and its key (the address hashed: no emails in Redis keys)."""
    item = parse(current_app.config.get("LOGIN_ACCOUNT_LIMIT", LOGIN_ACCOUNT_LIMIT))
    return item, (current_app.config.get("RATELIMIT_KEY_PREFIX", ""), "login-account")


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, else None (the failure is counted and
    logged). Raises LoginThrottled once the address had too many failures, whoever asks:
    the same for unknown addresses, so the answer tells nobody which accounts exist."""
    item, scope = _login_limit()
    key = _account_key(email)
    if not limiter.limiter.test(item, *scope, key):
        reset_at, _ = limiter.limiter.get_window_stats(item, *scope, key)
        audit.record("user.login_failed", email=email.strip()[:254], reason="throttled")
        db.session.commit()
        raise LoginThrottled(max(1, math.ceil(reset_at - time.time())))
    user = find_by_email(email)
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not user.active or not matches:
        limiter.limiter.hit(item, *scope, key)
        reason = "unknown email" if user is None else "deactivated" if not user.active else "wrong password"
        audit.record("user.login_failed", "user" if user else "", user.id if user else "",
                     email=email.strip()[:254], reason=reason)
        db.session.commit()
        return None
    limiter.limiter.clear(item, *scope, key)
    user.last_login_at = utcnow()
    audit.record("user.login", "user", user.id, by_user=user)
    db.session.commit()
    return user
