"""Postmark's bounce and spam complaint webhooks, POST /webhooks/postmark.

Postmark signs nothing: its webhooks carry the HTTP basic auth credentials set in the webhook URL
(POSTMARK_WEBHOOK_USER / POSTMARK_WEBHOOK_PASSWORD), optionally from an address in
POSTMARK_WEBHOOK_IPS. RecordType Bounce is mapped by its Type (postmarkapp.com/developer, bounce
types): a hard bounce or a bad address is hard; a soft bounce, a transient or DNS error, a block
or an unclassified bounce is soft; SpamComplaint is a complaint; auto-replies, challenges,
(un)subscribe requests and the like are ignored.
"""
from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any

from flask import current_app

from ..bounces import BounceReport, BounceType
from .common import (
    Malformed,
    Parsed,
    Refused,
    address,
    find,
    find_in_report,
    iso,
    metadata_headers,
    parse_json,
    report,
)

SOURCE = "postmark"
BOUNCE_TYPES = {
    "HardBounce": BounceType.HARD, "BadEmailAddress": BounceType.HARD,
    "SoftBounce": BounceType.SOFT, "Transient": BounceType.SOFT, "DnsError": BounceType.SOFT,
    "Blocked": BounceType.SOFT, "DMARCPolicy": BounceType.SOFT, "SpamNotification": BounceType.SOFT,
    "Unknown": BounceType.SOFT,
    "SpamComplaint": BounceType.COMPLAINT,
}  # AutoResponder, AddressChange, ChallengeVerification, (Un)subscribe, OpenRelayTest, VirusNotification,
#    ManuallyDeactivated, Unconfirmed, SMTPApiError, InboundError, TemplateRenderingFailed: not bounces


def authorize(username: str | None, password: str | None, remote_ip: str) -> None:
    config = current_app.config
    user, secret = config.get("POSTMARK_WEBHOOK_USER") or "", config.get("POSTMARK_WEBHOOK_PASSWORD") or ""
    if not (user and secret):
        raise Refused("The Postmark webhook is off: POSTMARK_WEBHOOK_USER and POSTMARK_WEBHOOK_PASSWORD are not set.",
                      403)
    networks = config.get("POSTMARK_WEBHOOK_IPS") or []
    if networks and not _in_networks(remote_ip, networks):
        raise Refused("This address may not call the Postmark webhook (POSTMARK_WEBHOOK_IPS).", 403)
    given_user, given_secret = (username or "").encode(), (password or "").encode()
    # Both compared, always: which of the two was wrong must not show in the time taken.
    good_user = hmac.compare_digest(given_user, user.encode())
    good_secret = hmac.compare_digest(given_secret, secret.encode())
    if not (good_user and good_secret):
        raise Refused("Wrong or missing Postmark webhook credentials.")


def _in_networks(remote_ip: str, networks: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(remote_ip)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network) for network in networks)


def receive(body: bytes, username: str | None, password: str | None, remote_ip: str) -> Parsed:
    authorize(username, password, remote_ip)
    record = parse_json(body)
    if not isinstance(record, dict):
        raise Malformed("The body must be one Postmark webhook record (a JSON object).")
    found = to_report(record)
    return Parsed(reports=[found] if found else [], received=1)


def bounce_type(record: Mapping[str, Any]) -> BounceType | None:
    if record.get("RecordType") == "SpamComplaint":
        return BounceType.COMPLAINT
    if record.get("RecordType") == "Bounce":
        return BOUNCE_TYPES.get(record.get("Type"))  # type: ignore[arg-type]
    return None  # Delivery, Open, Click, SubscriptionChange


def to_report(record: Mapping[str, Any]) -> BounceReport | None:
    kind = bounce_type(record)
    if kind is None or not address(record.get("Email")):
        return None
    ref = find(metadata_headers(record.get("Metadata"))) or find_in_report(record.get("Content"))
    return report(kind, SOURCE, email=record.get("Email"), ref=ref,
                  status_code="", diagnostic=record.get("Details") or record.get("Description") or record.get("Type"),
                  event_id=record.get("ID"), occurred_at=iso(record.get("BouncedAt")))
