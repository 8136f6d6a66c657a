"""Signed tokens for links in emails (itsdangerous, keyed by SECRET_KEY, one salt per purpose).

- confirm: double opt-in, expires (CONFIRM_MAX_AGE).
- unsubscribe / preferences: carried by every marketing email; they never expire, because
  people unsubscribe from old mail. They name the subscriber and the email's lists only.
- manage: the magic link mailed from the "manage my subscriptions" page, expires.
- view: the web version of a campaign email, as its recipient saw it.

Every token naming a subscriber also carries the subscriber's `token_version` as "v" (left
out while it is 0, so tokens of a never-revoked subscriber, and all tokens mailed before
versions existed, read as version 0). `load_current` refuses a token whose version is not
the subscriber's current one: "revoke links" and erasure raise it, ending every older link.

Previews and test sends carry `PREVIEW` in place of a token: the public routes answer it with
"this is a preview link" and change nothing (a preview must never mint a working link for a
real subscriber: it would outlive the marketer who made it).
"""
from __future__ import annotations

import hmac
import json
import time
import zlib
from typing import Any, cast

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes
from sqlalchemy import CursorResult, select, update

from ...extensions import db
from ...models import Subscriber
from ...models.subscriber import ERASED_DOMAIN
from .. import audit
from ..errors import NotFound

CONFIRM_MAX_AGE = 7 * 24 * 3600
MANAGE_MAX_AGE = 24 * 3600
PURPOSES = ("confirm", "unsubscribe", "preferences", "manage", "view")
PREVIEW = "preview"  # the inert stand-in for a token in previews and test sends (never a valid signature)


class TokenError(ValueError):
    """reason: expired, invalid, preview (an inert preview link), revoked (an older version), erased."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = reason == "expired"


_serializers: dict[tuple[str, str], URLSafeTimedSerializer] = {}
_signers: dict[tuple[str, str], _Signer] = {}


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
    takes either form. Our payloads (ints, None, lists of ints under short keys) are written
    without the json module, the timestamp is encoded once a second, and the HMAC goes
    through OpenSSL's one-shot call by the hash's name (itsdangerous' sha1 is a Python
    function, which sends `hmac.digest` the slow way). Tokens are checked by the serializer
    itself (`load`), and a test compares both outputs.
    """

    COMPRESS_FROM = 64  # bytes of JSON

    def __init__(self, serializer: URLSafeTimedSerializer) -> None:
        signer = serializer.make_signer()
        self.key = signer.derive_key()
        self.digest = getattr(signer.digest_method(), "name", None) or signer.digest_method
        self.sep = signer.sep
        self.stamp: tuple[int, bytes] = (0, b"")

    def dumps(self, payload: dict[str, Any]) -> str:
        data = _compact_json(payload)
        if data is None:
            data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        return self.dumps_json(data)

    def dumps_json(self, data: bytes) -> str:
        """The token of a payload already written as compact JSON (what `dumps` writes)."""
        body = base64_encode(data)
        if len(data) >= self.COMPRESS_FROM:
            compressed = zlib.compress(data)
            if len(compressed) < len(data) - 1:
                body = b"." + base64_encode(compressed)
        now = int(time.time())
        if self.stamp[0] != now:
            self.stamp = (now, self.sep + base64_encode(int_to_bytes(now)))
        value = body + self.stamp[1]
        return (value + self.sep + base64_encode(hmac.digest(self.key, value, self.digest))).decode("ascii")


def _compact_json(payload: dict[str, Any]) -> bytes | None:
    """`json.dumps(payload, separators=(",", ":"))` for ints, None and lists of ints under
    letter keys (every payload here); None for anything else (the json module writes it)."""
    parts = []
    for key, value in payload.items():
        if type(key) is not str or not (key.isascii() and key.isalpha()):
            return None
        kind = type(value)
        if kind is int:
            text = str(value)
        elif value is None:
            text = "null"
        elif kind is list and all(type(item) is int for item in value):
            text = "[" + ",".join(map(str, value)) + "]"
        else:
            return None
        parts.append(f'"{key}":{text}')
    return ("{" + ",".join(parts) + "}").encode("ascii")


def signer(purpose: str) -> _Signer:
    """The purpose's signer for this app's SECRET_KEY (made once; `dumps(payload)` a token)."""
    key = (purpose, current_app.config["SECRET_KEY"])
    found = _signers.get(key)
    if found is None:
        found = _signers[key] = _Signer(_serializer(purpose))
    return found


def make(purpose: str, payload: dict[str, Any]) -> str:
    return signer(purpose).dumps(payload)


def load(purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    try:
        payload = _serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("expired") from None
    except BadSignature:
        raise TokenError("invalid") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("s"), int) \
            or not isinstance(payload.get("v", 0), int):
        raise TokenError("invalid")
    return payload


def load_current(purpose: str, token: str, max_age: int | None = None) -> dict[str, Any]:
    """`load`, refusing preview links and tokens older than the subscriber's current version.

    A subscriber that no longer exists passes: the route answers that case itself.
    """
    if token == PREVIEW:
        raise TokenError("preview")
    payload = load(purpose, token, max_age)
    if payload["s"]:  # 0: the sample subscriber of a test send's web view
        row = db.session.execute(select(Subscriber.token_version, Subscriber.email)
                                 .where(Subscriber.id == payload["s"])).first()
        if row is not None and payload.get("v", 0) != row.token_version:
            raise TokenError("erased" if row.email.endswith(ERASED_DOMAIN) else "revoked")
    return payload


def current_version(subscriber_id: int) -> int:
    """The version to sign into a new link (the identity map usually has the row already)."""
    subscriber = db.session.get(Subscriber, subscriber_id) if subscriber_id else None
    return subscriber.token_version if subscriber is not None else 0


def bump_version(subscriber_id: int) -> None:
    """End every link mailed to this subscriber so far; the caller commits."""
    # One statement: two revocations at once both count, neither is lost.
    result = db.session.execute(update(Subscriber).where(Subscriber.id == subscriber_id)
                                .values(token_version=Subscriber.token_version + 1)
                                .execution_options(synchronize_session="fetch"))
    if cast(CursorResult, result).rowcount == 0:  # an UPDATE's result is a cursor's
        raise NotFound("subscriber", subscriber_id)


def revoke_links(subscriber_id: int) -> None:
    """The admin's "revoke email links": every unsubscribe, preferences, confirm, manage and
    web-view link sent so far stops working; the next email carries working ones."""
    bump_version(subscriber_id)
    audit.record("subscriber.links_revoked", "subscriber", subscriber_id)
    db.session.commit()


def _versioned(payload: dict[str, Any], subscriber_id: int, version: int | None) -> dict[str, Any]:
    if version is None:
        version = current_version(subscriber_id)
    if version:
        payload["v"] = version
    return payload


def confirm_token(subscriber_id: int, list_ids: list[int], version: int | None = None) -> str:
    return make("confirm", _versioned({"s": subscriber_id, "l": sorted(list_ids)}, subscriber_id, version))


def unsubscribe_token(subscriber_id: int, list_ids: list[int] | None = None, campaign_id: int | None = None,
                      version: int | None = None) -> str:
    payload = {"s": subscriber_id, "l": sorted(list_ids or []), "c": campaign_id}
    return make("unsubscribe", _versioned(payload, subscriber_id, version))


def preferences_token(subscriber_id: int, version: int | None = None) -> str:
    return make("preferences", _versioned({"s": subscriber_id}, subscriber_id, version))


def manage_token(subscriber_id: int, version: int | None = None) -> str:
    return make("manage", _versioned({"s": subscriber_id}, subscriber_id, version))


def view_token(campaign_id: int, subscriber_id: int | None, version: int | None = None) -> str:
    return make("view", _versioned({"s": subscriber_id or 0, "c": campaign_id}, subscriber_id or 0, version))
