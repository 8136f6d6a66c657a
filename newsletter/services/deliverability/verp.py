"""VERP return paths: the envelope sender names the message it carries, so a bounce that comes
back to it says which delivery bounced, whatever the remote server's DSN looks like.

With BOUNCE_ADDRESS=bounces@example.org a campaign delivery 1234 goes out with MAIL FROM
`bounces+d1234.k7q2m9x4tzwa@example.org`: a kind letter (d: campaign delivery, n: notification),
the id, and 12 base32 characters of HMAC-SHA256 (60 bits) keyed from SECRET_KEY, so nobody can
make a bounce count against another delivery by guessing. All lower case: some servers fold the
local part's case. Without BOUNCE_ADDRESS the envelope sender stays the From address.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

from flask import current_app

KINDS = ("d", "n")  # campaign delivery, notification (any one-off mail)
MAC_CHARS = 12
_TOKEN = re.compile(r"\+([dn])(\d{1,19})\.([a-z2-7]{" + str(MAC_CHARS) + r"})@")


@dataclass(frozen=True)
class Ref:
    kind: str   # "d" or "n"
    ident: int


@functools.lru_cache(maxsize=4)
def _key(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"newsletter.verp.v1", hashlib.sha256).digest()


def _mac(kind: str, ident: int) -> str:
    digest = hmac.new(_key(current_app.config["SECRET_KEY"]), f"{kind}{ident}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:MAC_CHARS].lower()


def bounce_address() -> str:
    return current_app.config.get("BOUNCE_ADDRESS") or ""


def return_path(kind: str, ident: int) -> str | None:
    """The envelope sender for one message, or None when BOUNCE_ADDRESS is not set."""
    base = bounce_address()
    if not base:
        return None
    local, _, domain = base.rpartition("@")
    return f"{local}+{kind}{ident}.{_mac(kind, ident)}@{domain}"


def parse(address: str) -> Ref | None:
    """The message a VERP address names; None if it is not one of ours or was tampered with."""
    match = _TOKEN.search((address or "").strip().strip("<>").lower())
    if match is None:
        return None
    kind, ident, mac = match.group(1), int(match.group(2)), match.group(3)
    if not hmac.compare_digest(mac, _mac(kind, ident)):
        return None
    return Ref(kind, ident)
