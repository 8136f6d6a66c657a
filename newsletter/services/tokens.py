"""Signed tokens for links in emails (itsdangerous, keyed by SECRET_KEY, one salt per purpose).

- confirm: double opt-in, expires (CONFIRM_MAX_AGE).
- unsubscribe / preferences: carried by every marketing email; they never expire, because
  people unsubscribe from old mail. They name the subscriber and the email's lists only.
- manage: the magic link mailed from the "manage my subscriptions" page, expires.
"""
from __future__ import annotations

from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

CONFIRM_MAX_AGE = 7 * 24 * 3600
MANAGE_MAX_AGE = 24 * 3600
PURPOSES = ("confirm", "unsubscribe", "preferences", "manage", "view")


class TokenError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.expired = reason == "expired"


_serializers: dict[tuple[str, str], URLSafeTimedSerializer] = {}


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    """One serializer per purpose and key (a campaign signs three links per recipient)."""
    assert purpose in PURPOSES
    key = (purpose, current_app.config["SECRET_KEY"])
    if key not in _serializers:
        _serializers[key] = URLSafeTimedSerializer(key[1], salt=f"newsletter.{purpose}")
    return _serializers[key]


def make(purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(purpose).dumps(payload)


def load(purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("expired") from None
    except BadSignature:
        raise TokenError("invalid") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int):
        raise TokenError("invalid")
    return payload


def confirm_token(subscriber_id: int, list_ids: list[int]) -> str:
    return make("confirm", {"s": subscriber_id, "l": sorted(list_ids)})


def unsubscribe_token(subscriber_id: int, list_ids: list[int] | None = None, campaign_id: int | None = None) -> str:
    return make("unsubscribe", {"s": subscriber_id, "l": sorted(list_ids or []), "c": campaign_id})


def preferences_token(subscriber_id: int) -> str:
    return make("preferences", {"s": subscriber_id})


def manage_token(subscriber_id: int) -> str:
    return make("manage", {"s": subscriber_id})
