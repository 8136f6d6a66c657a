"""Sign-in throttling that slows password guessing without letting an attacker lock the owner out.

Failures are counted per (account, client), in tiers that make each client wait longer the more
it fails ("3 per minute; 6 per 15 minutes; ..."). A client is the browser's known-device cookie
when it holds a valid one for this account, else its IP address. The known-device cookie is a
signed token set by a successful sign-in; with it, the owner's right password is admitted however
many guesses others make. Clients without one also share a per-account ceiling, so an attacker
rotating IP addresses cannot guess on without end; reaching it refuses unknown devices only.

Counters live in the rate limiter's storage (Redis in production), under the limiter's key prefix.
Accounts are keyed by a hash of the address typed, known or not, so answers reveal no accounts.
"""
from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse, parse_many

from ...extensions import limiter

# Failed sign-ins one client may make for one account before it must wait (LOGIN_CLIENT_LIMITS).
CLIENT_LIMITS = "3 per minute; 6 per 15 minutes; 10 per hour; 20 per day"
# Failed sign-ins for one account from all clients without its known-device cookie
# (LOGIN_ACCOUNT_LIMIT); beyond it only known devices may try.
ACCOUNT_LIMIT = "20 per hour"
DEVICE_COOKIE = "known_device"
DEVICE_MAX_AGE = 180 * 24 * 3600  # seconds; each sign-in from the device renews it
_SALT = "newsletter.known-device"


class LoginThrottled(Exception):
    """Sign-in refused without checking the password. `retry_after` is in seconds; `scope` is
    "client" (this device or address failed too often) or "account" (unknown devices are locked
    out of this account for now)."""

    def __init__(self, retry_after: int, scope: str) -> None:
        super().__init__(f"Too many failed sign-ins ({scope}); retry in {retry_after} s.")
        self.retry_after = retry_after
        self.scope = scope


@dataclass(frozen=True)
class Client:
    """Who is signing in, as the web layer sees it: the IP address and the known-device cookie."""

    ip: str = ""
    device_cookie: str = ""


def _account_key(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def known_device(client: Client, email: str) -> str | None:
    """The device id in `client`'s cookie when it was issued for this account and is still valid."""
    if not client.device_cookie:
        return None
    try:
        data = _serializer().loads(client.device_cookie, max_age=DEVICE_MAX_AGE)
    except BadSignature:  # includes an expired one
        return None
    if not isinstance(data, dict) or data.get("a") != _account_key(email) or not isinstance(data.get("d"), str):
        return None
    return data["d"]


def device_cookie(client: Client, email: str) -> str:
    """The known-device cookie to give the browser after a successful sign-in to `email`."""
    device = known_device(client, email) or secrets.token_urlsafe(12)
    return _serializer().dumps({"a": _account_key(email), "d": device})


def _client_limits() -> list[RateLimitItem]:
    return parse_many(current_app.config.get("LOGIN_CLIENT_LIMITS", CLIENT_LIMITS))


def _account_limit() -> RateLimitItem:
    return parse(current_app.config.get("LOGIN_ACCOUNT_LIMIT", ACCOUNT_LIMIT))


def _counters(client: Client, email: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
    """The limits this attempt counts against, each with its storage key."""
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX", "")
    account = _account_key(email)
    device = known_device(client, email)
    if device:
        return [(item, (prefix, "login-device", account, device)) for item in _client_limits()]
    ip = hashlib.sha256(client.ip.encode()).hexdigest()[:32]
    return ([(item, (prefix, "login-client", account, ip)) for item in _client_limits()]
            + [(_account_limit(), (prefix, "login-account", account))])


def check(client: Client, email: str) -> None:
    """Raise LoginThrottled when this client may not try this account's password now."""
    strategy = limiter.limiter
    for item, key in _counters(client, email):
        if not strategy.test(item, *key):
            reset_at, _ = strategy.get_window_stats(item, *key)
            scope = "account" if "login-account" in key else "client"
            raise LoginThrottled(max(1, math.ceil(reset_at - time.time())), scope)


def failed(client: Client, email: str) -> None:
    for item, key in _counters(client, email):
        limiter.limiter.hit(item, *key)


def succeeded(client: Client, email: str) -> None:
    """Forget this client's failures. The per-account ceiling stays: a success from one device
    must not hand an attacker elsewhere a fresh allowance."""
    for item, key in _counters(client, email):
        if "login-account" not in key:
            limiter.limiter.clear(item, *key)
