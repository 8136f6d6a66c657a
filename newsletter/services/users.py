"""Accounts: create users, check passwords, make sure an admin exists."""
from __future__ import annotations

import secrets

from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Role, User
from ..models.base import utcnow
from . import addresses
from .errors import ValidationError

MIN_PASSWORD_LENGTH = 10
# Checked against when the email is unknown, so a login takes as long either way.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class AccountError(ValueError):
    """An account change was refused; `field` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def normalize_email(raw: str) -> str:
    try:
        return addresses.normalize_email(raw)
    except ValidationError as exc:
        raise AccountError("email", exc.message) from None


def find_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError("password", f"Password must be at least {MIN_PASSWORD_LENGTH} characters.")


def create_user(email: str, password: str, role: Role = Role.VIEWER, name: str = "") -> User:
    email = normalize_email(email)
    _check_password(password)
    if find_by_email(email):
        raise AccountError("email", f"A user with the email {email} already exists.")
    user = User(email=email, name=name, role=role, password_hash=generate_password_hash(password))
    db.session.add(user)
    db.session.commit()
    return user


def set_password(user: User, password: str) -> None:
    _check_password(password)
    user.password_hash = generate_password_hash(password)
    db.session.commit()


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
    password = secrets.token_urlsafe(12)
    create_or_reset_admin(email, password)
    return password


def authenticate(email: str, password: str) -> User | None:
    user = find_by_email(email)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not user.active or not check_password_hash(user.password_hash, password):
        return None
    user.last_login_at = utcnow()
    db.session.commit()
    return user
