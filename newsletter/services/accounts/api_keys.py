"""API keys: random secrets shown once, stored as SHA-256 hashes.

The keys carry 256 bits of randomness, so a fast hash is safe here (unlike passwords).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update

from ...extensions import db
from ...models import ApiKey, Role
from ...models.base import utcnow
from .. import audit
from ..messages import N_
from ..text import one_line

KEY_PREFIX = "nl_"
# last_used_at is for people ("used 3 hours ago"), so one write a minute per key is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_api_key(name: str, role: Role = Role.MARKETER) -> tuple[ApiKey, str]:
    name = one_line(name, "name", 200, required=True, label=N_("A key name"))
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(name=name, prefix=raw[: len(KEY_PREFIX) + 8], key_hash=_hash(raw), role=role)
    db.session.add(key)
    db.session.flush()
    audit.record("api_key.created", "api_key", key.id, name=key.name, role=role, prefix=key.prefix)
    db.session.commit()
    return key, raw


def authenticate(raw: str) -> ApiKey | None:
    """The active key matching `raw`, its last-used time refreshed when a minute old; else None."""
    key = db.session.scalar(select(ApiKey).where(ApiKey.prefix == raw[: len(KEY_PREFIX) + 8]))
    if key is None or not key.active or not hmac.compare_digest(key.key_hash, _hash(raw)):
        return None
    now = utcnow()
    if key.last_used_at is None or key.last_used_at <= now - LAST_USED_RESOLUTION:
        _touch(key, now)
    return key


def _touch(key: ApiKey, now: datetime) -> None:
    """One conditional UPDATE: of concurrent requests in the same minute, one writes."""
    stale = now - LAST_USED_RESOLUTION
    db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key.id, (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at <= stale))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False))
    db.session.commit()  # expires `key`: its next read loads the new time



def get_key(key_id: int) -> ApiKey | None:
    return db.session.get(ApiKey, key_id)


def revoke(key_id: int) -> ApiKey | None:
    key = db.session.get(ApiKey, key_id)
    if key is not None and key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record("api_key.revoked", "api_key", key.id, name=key.name, prefix=key.prefix)
        db.session.commit()
    return key


def list_keys() -> list[ApiKey]:
    return list(db.session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())))
