"""API keys: random secrets shown once, stored as SHA-256 hashes.

The keys carry 256 bits of randomness, so a fast hash is safe here (unlike passwords).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import select

from ..extensions import db
from ..models import ApiKey, Role
from ..models.base import utcnow

KEY_PREFIX = "nl_"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(name: str, role: Role = Role.MARKETER) -> tuple[ApiKey, str]:
    name = name.strip()
    if not name:
        raise ValueError("name must not be empty")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name[:200], prefix=raw[: len(KEY_PREFIX) + 8], key_hash=_hash(raw), role=role)
    db.session.add(key)
    db.session.commit()
    return key, raw


def authenticate(raw: str) -> ApiKey | None:
    """The active key matching `raw`, with its last-used time updated; else None."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == raw[: len(KEY_PREFIX) + 8]))
    if key is None or not key.active or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    key.last_used_at = utcnow()
    db.session.commit()
    return key


def revoke(key_id: int) -> ApiKey | None:
    key = db.session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        db.session.commit()
    return key


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))
