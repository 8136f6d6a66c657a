"""Amazon SES bounce and complaint notifications, delivered by SNS to POST /webhooks/ses.

The SNS envelope is verified first (sns.py) and its topic checked against SES_SNS_TOPIC_ARNS when
that is set; a SubscriptionConfirmation is confirmed. A Notification's Message is SES's JSON
(docs.aws.amazon.com/ses/latest/dg/notification-contents.html): bounceType Permanent is a hard
bounce, Transient and Undetermined soft; a complaint is a complaint unless its feedback type is
"not-spam". Our delivery is found from the original headers SES echoes (mail.headers: our
X-Newsletter-Delivery, the VERP envelope sender in mail.source, the Message-ID), else by address.
"""
from __future__ import annotations

import email.message
import logging
from collections.abc import Mapping
from typing import Any

from flask import current_app

from ..bounces import BounceReport, BounceType
from ..verp import Ref
from . import sns
from .common import Malformed, Parsed, Refused, address, find, iso, mapping, parse_json, report, text

log = logging.getLogger(__name__)
SOURCE = "ses"
BOUNCE_TYPES = {"Permanent": BounceType.HARD, "Transient": BounceType.SOFT, "Undetermined": BounceType.SOFT}


def receive(body: bytes, headers: Mapping[str, str]) -> Parsed:
    """Verify and map one SNS request (`headers`: names in lower case)."""
    message = parse_json(body)
    if not isinstance(message, dict):
        raise Malformed("The body is not an SNS message.")
    kind = message.get("Type")
    announced = headers.get("x-amz-sns-message-type")
    if announced is not None and announced != kind:
        raise Malformed("The x-amz-sns-message-type header does not match the message's Type.")
    topics = current_app.config.get("SES_SNS_TOPIC_ARNS") or []
    if topics and message.get("TopicArn") not in topics:
        raise Refused("This SNS topic is not in SES_SNS_TOPIC_ARNS: refused.", 403)
    sns.verify(message)
    if kind == "SubscriptionConfirmation":
        sns.confirm(message.get("SubscribeURL"))
        log.info("Confirmed the SNS subscription to %s", text(message.get("TopicArn")))
        return Parsed(note="subscription confirmed")
    if kind == "UnsubscribeConfirmation":
        return Parsed(note="unsubscribe confirmation ignored")
    try:
        event = parse_json(str(message["Message"]).encode("utf-8"))
    except Malformed:
        return Parsed(received=1, note="not an SES notification")  # e.g. SES's topic test message
    return Parsed(reports=reports(mapping(event), str(message["MessageId"])), received=1)


def reports(event: Mapping[str, Any], message_id: str) -> list[BounceReport]:
    """One report per bounced or complaining recipient of an SES notification (or event)."""
    kind = event.get("notificationType") or event.get("eventType")
    mail = mapping(event.get("mail"))
    if kind == "Bounce":
        bounce = mapping(event.get("bounce"))
        bounce_type = BOUNCE_TYPES.get(bounce.get("bounceType"), BounceType.SOFT)  # type: ignore[arg-type]
        recipients, when = _recipients(bounce, "bouncedRecipients"), iso(bounce.get("timestamp"))
        ref = _ref(mail, len(recipients))
        return [report(bounce_type, SOURCE, email=r.get("emailAddress"), ref=ref, status_code=r.get("status"),
                       diagnostic=r.get("diagnosticCode") or bounce.get("bounceSubType"),
                       event_id=_event_id(message_id, r, len(recipients)), occurred_at=when) for r in recipients]
    if kind == "Complaint":
        complaint = mapping(event.get("complaint"))
        feedback = text(complaint.get("complaintFeedbackType"))
        if feedback == "not-spam":
            return []
        recipients, when = _recipients(complaint, "complainedRecipients"), iso(complaint.get("timestamp"))
        ref = _ref(mail, len(recipients))
        return [report(BounceType.COMPLAINT, SOURCE, email=r.get("emailAddress"), ref=ref,
                       diagnostic=feedback or "complaint", event_id=_event_id(message_id, r, len(recipients)),
                       occurred_at=when) for r in recipients]
    return []  # deliveries, sends, opens...: not ours to record


def _recipients(obj: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    found = obj.get(name)
    if not isinstance(found, list):
        return []
    return [r for r in found if isinstance(r, Mapping) and address(r.get("emailAddress"))]


def _event_id(message_id: str, recipient: Mapping[str, Any], count: int) -> str:
    """The SNS MessageId; one notification can name several recipients, each its own event."""
    return message_id if count == 1 else f"{message_id}/{address(recipient.get('emailAddress'))}"


def _ref(mail: Mapping[str, Any], recipients: int) -> Ref | None:
    """Our delivery from the headers SES echoes. Our messages have one recipient each: a
    notification naming several is not about one of our deliveries."""
    if recipients != 1:
        return None
    headers = email.message.Message()
    echoed = mail.get("headers")
    for header in echoed if isinstance(echoed, list) else []:
        name, value = mapping(header).get("name"), mapping(header).get("value")
        if isinstance(name, str) and isinstance(value, str) and name.isprintable() and name.isascii():
            headers[name] = text(value, 998)
    source = text(mail.get("source"), 320)
    if source and "Return-Path" not in headers:
        headers["Return-Path"] = f"<{source}>"
    return find(headers, text(mapping(mail.get("commonHeaders")).get("messageId"), 998))
