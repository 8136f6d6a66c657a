"""Accounts: sign-in (throttled by login_guard), create and manage users, make sure an admin exists."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ...extensions import db
from ...models import Role, User
from ...models.base import utcnow
from .. import addresses, audit
from ..errors import FieldError, NotFound, ValidationError
from ..messages import N_, Message
from ..text import one_line
from . import login_guard, passwords

MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH
LoginThrottled = login_guard.LoginThrottled
# Checked against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(FieldError):
    """An account change was refused; `field` names the offending input."""


def _clean_name(name: str | None) -> str:
    try:
        return one_line(name, "name", 200, label=N_("A name"))
    except ValidationError as exc:
        raise AccountError("name", exc.text) from None


def normalize_email(raw: str) -> str:
    try:
        return addresses.normalize_email(raw)
    except ValidationError as exc:
        raise AccountError("email", exc.text) from None


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def get(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def all_users() -> list[User]:
    return list(db.session.scalars(select(User).order_by(User.active.desc(), func.lower(User.email))))


def _check_password(password: str, email: str, name: str | None = "") -> None:
    problem = passwords.problem(password, email, name)
    if problem:
        raise AccountError("password", problem)


def generate_password(email: str = "", name: str | None = "") -> str:
    while True:  # 96 random bits: a second round is all but impossible, but the rules must hold
        password = secrets.token_urlsafe(12)
        if passwords.problem(password, email, name) is None:
            return password


def create_user(email: str, password: str, role: Role = Role.VIEWER, name: str = "") -> User:
    email = normalize_email(email)
    _check_password(password, email, name)
    if find_by_email(email):
        raise AccountError("email", "A user with the email %(email)s already exists.", email=email)
    user = User(email=email, name=_clean_name(name), role=role, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.flush()
    audit.record("user.created", "user", user.id, email=email, role=role)
    db.session.commit()
    return user


def invite(email: str, name: str = "", role: Role = Role.VIEWER, password: str = "") -> tuple[User, str | None]:
    """Create a user; without a password one is generated and returned (to be shown once)."""
    generated = "" if password else generate_password(email, name)
    return create_user(email, password or generated, role, name), generated or None


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
    _check_password(password, user.email, user.name)
    user.password_hash = generate_password_hash(password)
    _end_sessions(user)  # sessions opened with the old password end
    audit.record("user.password_reset", "user", user.id, email=user.email)
    db.session.commit()


def reset_password(user_id: int, password: str = "") -> str | None:
    """A new password (given, or generated and returned to be shown once)."""
    user = get(user_id)
    generated = "" if password else generate_password(user.email, user.name)
    set_password(user, password or generated)
    return generated or None


def create_or_reset_admin(email: str, password: str) -> tuple[User, bool]:
    """Create an admin, or make an existing account an active admin with this password."""
    user = find_by_email(normalize_email(email))
    if user is None:
        return create_user(email, password, Role.ADMIN, name="Admin"), True
    _check_password(password, user.email, user.name)  # before the role changes: all or nothing
    user.role, user.active = Role.ADMIN, True
    set_password(user, password)
    return user, False


def ensure_admin(email: str = "admin@example.com") -> str | None:
    """Create a first admin if there is none; return its generated password, or None."""
    if db.session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1)) is not None:
        return None
    password = generate_password(email, "Admin")
    create_or_reset_admin(email, password)
    return password


# Role and active changes: an admin never locks themself or everyone out ----------------------

SELF_CHANGE = {"demote": Message("You cannot demote yourself. Ask another admin to do it."),
               "deactivate": Message("You cannot deactivate yourself. Ask another admin to do it.")}


def _keeps_an_admin(user: User, by_user_id: int | None, field: str, verb: str) -> None:
    """Refuse when `user` is the acting admin, or the last active one.

    The active admins' rows are locked first (PostgreSQL), so two admins demoting each other
    at the same moment cannot both succeed and leave none.
    """
    if user.id == by_user_id:
        raise AccountError(field, SELF_CHANGE[verb])
    admins = db.session.scalars(select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
                                .with_for_update()).all()
    if user.id in admins and len(admins) == 1:
        raise AccountError(field, "%(email)s is the last active admin. Make another user an admin first.",
                           email=user.email)


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

def authenticate(email: str, password: str, client: login_guard.Client | None = None) -> User | None:
    """The active user with this email and password, else None (the failure is counted and
    logged). Raises LoginThrottled, without checking the password, when `client` failed too
    often for this address (see login_guard): the same for unknown addresses, so the answer
    tells nobody which accounts exist."""
    client = client or login_guard.Client()
    try:
        login_guard.check(client, email)
    except LoginThrottled as exc:
        audit.record("user.login_failed", email=email.strip()[:254], reason="throttled", limit=exc.scope)
        db.session.commit()
        raise
    user = find_by_email(email)
    matches = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not user.active or not matches:
        login_guard.failed(client, email)
        reason = "unknown email" if user is None else "deactivated" if not user.active else "wrong password"
        audit.record("user.login_failed", "user" if user else "", user.id if user else "",
                     email=email.strip()[:254], reason=reason)
        db.session.commit()
        return None
    login_guard.succeeded(client, email)
    user.last_login_at = utcnow()
    audit.record("user.login", "user", user.id, by_user=user)
    db.session.commit()
    return user
