"""SendGrid's Event Webhook, POST /webhooks/sendgrid: signed with ECDSA P-256.

SendGrid signs the timestamp header followed by the raw body with its private key; the signature
(base64 DER) comes in X-Twilio-Email-Event-Webhook-Signature and the timestamp in
X-Twilio-Email-Event-Webhook-Timestamp. The public key (SENDGRID_WEBHOOK_PUBLIC_KEY) is the base64
DER key SendGrid's settings page shows, or PEM. The body is a JSON array of events: bounce (type
"bounce" hard, "blocked" soft), dropped with reason "Bounced Address" (hard), spamreport
(complaint); deferred and the rest are ignored. `smtp-id` is the Message-ID we sent.
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
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

SOURCE = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENTS = 5000


def public_key(configured: str) -> ec.EllipticCurvePublicKey:
    """SENDGRID_WEBHOOK_PUBLIC_KEY as a P-256 key; ValueError when it is not one."""
    raw = configured.strip()
    if raw.startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(raw.encode("ascii"))
    else:
        try:
            key = serialization.load_der_public_key(base64.b64decode(raw, validate=True))
        except binascii.Error:
            raise ValueError("not base64") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("not an ECDSA P-256 public key")
    return key


def verify(body: bytes, headers: Mapping[str, str], configured: str, max_age: float) -> None:
    """Raise unless SendGrid's key signed this body recently (`headers`: names in lower case)."""
    signature, timestamp = headers.get(SIGNATURE_HEADER.lower()), headers.get(TIMESTAMP_HEADER.lower())
    if not signature or not timestamp:
        raise Refused(f"The {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required.")
    check_fresh(timestamp, max_age)
    try:
        der = base64.b64decode(signature, validate=True)
        public_key(configured).verify(der, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Refused("The SendGrid signature does not match the body.") from None


def receive(body: bytes, headers: Mapping[str, str]) -> Parsed:
    configured = current_app.config.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or ""
    if not configured:
        raise Refused("The SendGrid webhook is off: SENDGRID_WEBHOOK_PUBLIC_KEY is not set.", 403)
    verify(body, headers, configured, current_app.config["PROVIDER_WEBHOOK_MAX_AGE"])
    events = parse_json(body)
    if not isinstance(events, list) or len(events) > MAX_EVENTS:
        raise Malformed(f"The body must be a JSON array of at most {MAX_EVENTS} events.")
    found = [r for r in (to_report(mapping(event)) for event in events) if r is not None]
    return Parsed(reports=found, received=len(events))


def bounce_type(event: Mapping[str, Any]) -> BounceType | None:
    kind = event.get("event")
    if kind == "bounce":
        return BounceType.SOFT if event.get("type") == "blocked" else BounceType.HARD
    if kind == "dropped" and text(event.get("reason")).lower() == "bounced address":
        return BounceType.HARD
    if kind == "spamreport":
        return BounceType.COMPLAINT
    return None  # deferred, delivered, processed, opens, clicks...


def to_report(event: Mapping[str, Any]) -> BounceReport | None:
    kind = bounce_type(event)
    if kind is None or not address(event.get("email")):
        return None
    ref = find(metadata_headers(event), text(event.get("smtp-id"), 998))
    return report(kind, SOURCE, email=event.get("email"), ref=ref, status_code=event.get("status"),
                  diagnostic=event.get("reason") or event.get("response") or event.get("event"),
                  event_id=event.get("sg_event_id"), occurred_at=epoch(event.get("timestamp")))
