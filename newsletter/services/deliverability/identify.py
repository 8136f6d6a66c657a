"""Which message a bounce or complaint is about, from what it carries back.

In order of trust: the VERP return path (signed), then our own headers and Message-ID as the
original message's copy shows them (a DSN's text/rfc822-headers part, an ARF report's
message/rfc822, a provider's echo of the headers). Message-IDs are ours but not signed: they
are only read from reports that came through a verified channel (our bounce mailbox, a
signed provider webhook).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from email.message import Message
from typing import Any

from . import verp
from .verp import Ref

# send.build_envelope: <campaign.delivery.hex@domain>; notifications: <n.id.hex@domain>.
_CAMPAIGN_MID = re.compile(r"^<?(\d{1,10})\.(\d{1,19})\.[0-9a-f]{8}@", re.I)
_NOTIFICATION_MID = re.compile(r"^<?n\.(\d{1,19})\.[0-9a-f]{8}@", re.I)
_DELIVERY_HEADER = re.compile(r"^\s*(\d{1,10})\.(\d{1,19})\s*$")
_NOTIFICATION_HEADER = re.compile(r"^\s*(\d{1,19})\s*$")


def from_message_id(message_id: str) -> Ref | None:
    value = (message_id or "").strip()
    if match := _NOTIFICATION_MID.match(value):
        return Ref("n", int(match.group(1)))
    if match := _CAMPAIGN_MID.match(value):
        return Ref("d", int(match.group(2)))
    return None


def _get(headers: Message | Mapping[str, Any], name: str) -> str:
    if isinstance(headers, Message):
        value = headers.get(name)
    else:
        lowered = {str(k).lower(): v for k, v in headers.items()}
        value = lowered.get(name.lower())
    return str(value) if value is not None else ""


def from_headers(headers: Message | Mapping[str, Any]) -> Ref | None:
    """The message the headers (of our original message, or of the bounce addressed to our
    VERP address) identify, or None."""
    for name in ("Return-Path", "X-Original-To", "Delivered-To", "To"):
        ref = verp.parse(_get(headers, name))
        if ref is not None:
            return ref
    if match := _DELIVERY_HEADER.match(_get(headers, "X-Newsletter-Delivery")):
        return Ref("d", int(match.group(2)))
    if match := _NOTIFICATION_HEADER.match(_get(headers, "X-Newsletter-Notification")):
        return Ref("n", int(match.group(1)))
    return from_message_id(_get(headers, "Message-ID"))
