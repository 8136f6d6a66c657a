"""Compact signed tokens for tracked links and pixels: no database read to trust one.

A token is base64url(payload + MAC). The payload holds a version byte, flags, the campaign id,
the subscriber id (individual mode only), the build time in whole seconds and the link id
(clicks only, last: a message's click tokens share everything before it); the MAC is
HMAC-SHA256 over the payload with a key derived from SECRET_KEY for this purpose, cut to 12 bytes
(96 bits: forging one still takes ~2^95 tries, and every try is an HTTP request). Opens and
clicks use different keys, so a pixel token never works as a click.

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


class Signer:
    """Tokens for one recipient's message: the payload prefix and the keyed hash state are made
    once, so each further link costs one hash copy (a message can carry dozens of links)."""

    def __init__(self, campaign_id: int, subscriber_id: int | None, built_at: int, namespace: str = "") -> None:
        who = _HAS_SUBSCRIBER if subscriber_id is not None else 0
        tail = (_varint(campaign_id) + (_varint(subscriber_id) if subscriber_id is not None else b"")
                + struct.pack(">I", built_at & 0xFFFFFFFF))
        secret = current_app.config["SECRET_KEY"]
        self._open = bytes((VERSION, who)) + tail
        self._click_prefix = bytes((VERSION, who | _HAS_LINK)) + tail
        self._click = hmac.new(_key(secret, f"{namespace}click"), self._click_prefix, hashlib.sha256)
        self._open_key = _key(secret, f"{namespace}open")

    def open(self) -> str:
        return _encode(self._open + hmac.digest(self._open_key, self._open, "sha256")[:MAC_BYTES])

    def click(self, link_id: int) -> str:
        link = _varint(link_id)
        state = self._click.copy()
        state.update(link)
        return _encode(self._click_prefix + link + state.digest()[:MAC_BYTES])


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make(purpose: str, campaign_id: int, link_id: int | None, subscriber_id: int | None, built_at: int) -> str:
    """One token: `purpose` "open" (no link) or "click" (a link id)."""
    signer = Signer(campaign_id, subscriber_id, built_at)
    if purpose == "click":
        assert link_id is not None
        return signer.click(link_id)
    return signer.open()


def load(purpose: str, token: str, namespace: str = "") -> Token:
    """The token's contents; TokenInvalid for anything we did not sign for this purpose.

    `namespace` (the Signer's): another key, so another feature's tokens (automation emails:
    "automation.", whose ids name a step and an enrollment) never pass as a campaign's."""
    if not token or len(token) > MAX_TOKEN:
        raise TokenInvalid("length")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        raise TokenInvalid("encoding") from None
    payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if len(payload) < 7:
        raise TokenInvalid("length")
    expected = hmac.digest(_key(current_app.config["SECRET_KEY"], f"{namespace}{purpose}"), payload, "sha256")
    if not hmac.compare_digest(expected[:MAC_BYTES], mac):
        raise TokenInvalid("signature")
    if payload[0] != VERSION:
        raise TokenInvalid("version")
    flags = payload[1]
    campaign_id, i = _read_varint(payload, 2)
    link_id = subscriber_id = None
    if flags & _HAS_SUBSCRIBER:
        subscriber_id, i = _read_varint(payload, i)
    if len(payload) < i + 4:
        raise TokenInvalid("truncated")
    built_at, i = struct.unpack(">I", payload[i:i + 4])[0], i + 4
    if flags & _HAS_LINK:
        link_id, i = _read_varint(payload, i)
    if i != len(payload) or (purpose == "click") != (link_id is not None):
        raise TokenInvalid("layout")
    return Token(campaign_id, link_id, subscriber_id, built_at)
