"""Mailgun's webhooks, POST /webhooks/mailgun: HMAC-SHA256 of timestamp + token.

Each JSON body holds `signature` {timestamp, token, signature} and `event-data`. The signature is
the hex HMAC-SHA256 of timestamp followed by token, keyed with MAILGUN_WEBHOOK_SIGNING_KEY
(documentation.mailgun.com, "Securing Webhooks"). A timestamp older than PROVIDER_WEBHOOK_MAX_AGE
is refused, and so is a token seen before (kept in Redis with SET NX for twice that long), so a
captured request cannot be played again. Events: failed with severity permanent (hard) or
temporary (soft), complained (complaint); the rest are ignored.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

import redis
from flask import current_app

from ..bounces import BounceReport, BounceType
from .common import (
    Malformed,
    Parsed,
    Refused,
    address,
    check_fresh,
    epoch,
    find,
    mapping,
    metadata_headers,
    parse_json,
    report,
    text,
)

SOURCE = "mailgun"
TOKEN_KEY = "newsletter:mailgun-token:"
_clients: dict[tuple[int, str], redis.Redis] = {}


def _redis() -> redis.Redis:
    url = current_app.config["REDIS_URL"]
    slot = (os.getpid(), url)  # a forked process never shares its parent's connections
    if slot not in _clients:
        _clients[slot] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return _clients[slot]


def signature_of(key: str, timestamp: str, token: str) -> str:
    return hmac.new(key.encode("utf-8"), (timestamp + token).encode("utf-8"), hashlib.sha256).hexdigest()


def verify(payload: Mapping[str, Any], key: str, max_age: float) -> str:
    """Raise unless Mailgun signed this payload recently; return the token."""
    block = mapping(payload.get("signature"))
    values = [block.get(name) for name in ("timestamp", "token", "signature")]
    if isinstance(values[0], int) and not isinstance(values[0], bool):
        values[0] = str(values[0])
    if not all(isinstance(value, str) and 0 < len(value) <= 256 for value in values):
        raise Refused("signature.timestamp, signature.token and signature.signature are required.")
    timestamp, token, signature = (str(value) for value in values)
    if not hmac.compare_digest(signature_of(key, timestamp, token).encode(), signature.encode("utf-8", "replace")):
        raise Refused("The Mailgun signature does not match.")
    check_fresh(timestamp, max_age)
    return token


def receive(body: bytes, headers: Mapping[str, str]) -> Parsed:
    key = current_app.config.get("MAILGUN_WEBHOOK_SIGNING_KEY") or ""
    if not key:
        raise Refused("The Mailgun webhook is off: MAILGUN_WEBHOOK_SIGNING_KEY is not set.", 403)
    payload = parse_json(body)
    if not isinstance(payload, dict):
        raise Malformed("The body must be a JSON object with signature and event-data.")
    max_age = current_app.config["PROVIDER_WEBHOOK_MAX_AGE"]
    token = verify(payload, key, max_age)
    found = to_report(mapping(payload.get("event-data")))
    seen = TOKEN_KEY + hashlib.sha256(token.encode()).hexdigest()
    if not _redis().set(seen, 1, nx=True, ex=max(1, int(max_age * 2))):
        raise Refused("This Mailgun token was used before: refused as a replay.", 403)
    # Should recording fail, Mailgun's retry (same token) must not be taken for a replay.
    return Parsed(reports=[found] if found else [], received=1, undo=lambda: _forget(seen))


def _forget(seen: str) -> None:
    _redis().delete(seen)


def bounce_type(data: Mapping[str, Any]) -> BounceType | None:
    if data.get("event") == "failed":
        return {"permanent": BounceType.HARD, "temporary": BounceType.SOFT}.get(text(data.get("severity")))
    if data.get("event") == "complained":
        return BounceType.COMPLAINT
    return None


def to_report(data: Mapping[str, Any]) -> BounceReport | None:
    kind = bounce_type(data)
    if kind is None or not address(data.get("recipient")):
        return None
    status = mapping(data.get("delivery-status"))
    message_id = text(mapping(mapping(data.get("message")).get("headers")).get("message-id"), 998)
    return report(kind, SOURCE, email=data.get("recipient"), ref=find(metadata_headers(data.get("user-variables")),
                                                                        message_id),
                  status_code=status.get("enhanced-code") or status.get("code"),
                  diagnostic=status.get("message") or status.get("description") or data.get("reason") or kind.value,
                  event_id=data.get("id"), occurred_at=epoch(data.get("timestamp")))
