"""Signed tokens for links in emails (itsdangerous, keyed by SECRET_KEY, one salt per purpose).

- confirm: double opt-in, expires (CONFIRM_MAX_AGE).
- unsubscribe / preferences: carried by every marketing email; they never expire, because
  people unsubscribe from old mail. They name the subscriber and the email's lists only.
- manage: the magic link mailed from the "manage my subscriptions" page, expires.
"""
from __future__ import annotations

import hmac
import json
import time
import zlib
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes

CONFIRM_MAX_AGE = 7 * 24 * 3600
MANAGE_MAX_AGE = 24 * 3600
PURPOSES = ("confirm", "unsubscribe", "preferences", "manage", "view")


class TokenError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.expired = reason == "expired"


_serializers: dict[tuple[str, str], URLSafeTimedSerializer] = {}
_signers: dict[tuple[str, str], "_Signer"] = {}


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    """One serializer per purpose and key (a campaign signs three links per recipient)."""
    assert purpose in PURPOSES
    key = (purpose, current_app.config["SECRET_KEY"])
    if key not in _serializers:
        _serializers[key] = URLSafeTimedSerializer(key[1], salt=f"newsletter.{purpose}")
    return _serializers[key]


class _Signer:
    """`URLSafeTimedSerializer.dumps` with the per-call work done once.

    itsdangerous builds a signer and derives its key on every call, and tries zlib on every
    payload (~20 µs; a campaign signs three links per recipient). This keeps the derived key
    and repeats the same steps: compact JSON, URL-safe base64, the timestamp, HMAC. zlib is
    only tried on payloads long enough to gain from it (a short one never does); `loads`
    takes either form. Tokens are checked by the serializer itself (`load`), and a test
    compares both outputs.
    """

    COMPRESS_FROM = 64  # bytes of JSON

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer()
        self.key = signer.derive_key()
        self.digest = signer.digest_method
        self.sep = signer.sep

    def dumps(self, payload: dict[str, Any]) -> str:
        data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        body = base64_encode(data)
        if len(data) >= self.COMPRESS_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                body = b"." + base64_encode(compressed)
        value = body + self.sep + base64_encode(int_to_bytes(int(time.time())))
        return (value + self.sep + base64_encode(hmac.digest(self.key, value, self.digest))).decode("ascii")


def make(purpose: str, payload: dict[str, Any]) -> str:
    key = (purpose, current_app.config["SECRET_KEY"])
    signer = _signers.get(key)
    if signer is None:
        signer = _signers[key] = _Signer(_serializer(purpose))
    return signer.dumps(payload)


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
