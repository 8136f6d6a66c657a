"""Compact signed tokens for tracked links and pixels: no database read to trust one.

A token is base64url(payload + MAC). The payload holds a version byte, flags, the campaign id,
the link id (clicks only), the subscriber id (individual mode only) and the build time in
whole seconds; the MAC is HMAC-SHA256 over the payload with a key derived from SECRET_KEY for
this purpose, cut to 12 bytes (96 bits: forging one still takes ~2^95 tries, and every try is an
HTTP request). Opens and clicks use different keys, so a pixel token never works as a click.

The build time is in seconds rather than minutes: the same 4 bytes, and "too soon after
delivery" needs seconds. A typical click token is about 30 characters.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import struct
from dataclasses import dataclass

from flask import current_app

VERSION = 1
MAC_BYTES = 12
MAX_TOKEN = 80  # characters; anything longer is refused before decoding
_HAS_LINK, _HAS_SUBSCRIBER = 1, 2


class TokenInvalid(ValueError):
    """Tampered, truncated, of another purpose or signed with another key."""


@dataclass(frozen=True)
class Token:
    campaign_id: int
    link_id: int | None  # None for the pixel
    subscriber_id: int | None  # None unless the campaign tracks individually
    built_at: int  # unix seconds when the message was built


@functools.lru_cache(maxsize=8)
def _key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(secret_key.encode(), f"newsletter.engagement.{purpose}.v1".encode(), hashlib.sha256).digest()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(data) or shift > 56:
            raise TokenInvalid("truncated")
        byte = data[i]
        n |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return n, i


def make(purpose: str, campaign_id: int, link_id: int | None, subscriber_id: int | None, built_at: int) -> str:
    """`purpose`: "open" (no link) or "click" (a link id)."""
    flags = (_HAS_LINK if link_id is not None else 0) | (_HAS_SUBSCRIBER if subscriber_id is not None else 0)
    payload = bytes((VERSION, flags)) + _varint(campaign_id)
    if link_id is not None:
        payload += _varint(link_id)
    if subscriber_id is not None:
        payload += _varint(subscriber_id)
    payload += struct.pack(">I", built_at & 0xFFFFFFFF)
    mac = hmac.new(_key(current_app.config["SECRET_KEY"], purpose), payload, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def load(purpose: str, token: str) -> Token:
    """The token's contents; TokenInvalid for anything we did not sign for this purpose."""
    if not token or len(token) > MAX_TOKEN:
        raise TokenInvalid("length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise TokenInvalid("encoding") from None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) < 7:
        raise TokenInvalid("length")
    expected = hmac.new(_key(current_app.config["SECRET_KEY"], purpose), payload, hashlib.sha256).digest()
    if not hmac.compare_digest(expected[:MAC_BYTES], mac):
        raise TokenInvalid("signature")
    if payload[0] != VERSION:
        raise TokenInvalid("version")
    flags = payload[1]
    campaign_id, i = _read_varint(payload, 2)
    link_id = subscriber_id = None
    if flags & _HAS_LINK:
        link_id, i = _read_varint(payload, i)
    if flags & _HAS_SUBSCRIBER:
        subscriber_id, i = _read_varint(payload, i)
    if len(payload) - i != 4 or (purpose == "click") != (link_id is not None):
        raise TokenInvalid("layout")
    return Token(campaign_id, link_id, subscriber_id, struct.unpack(">I", payload[i:])[0])
