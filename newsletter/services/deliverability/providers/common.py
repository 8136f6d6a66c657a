"""What every provider webhook shares: its refusals, JSON parsing that never raises anything else,
finding our delivery in what the provider echoes, and recording the reports."""
from __future__ import annotations

import email
import email.message
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .. import bounces, identify
from ..bounces import BounceReport, BounceType
from ..verp import Ref

DIAGNOSTIC_CHARS = 500
# Keys of custom args / metadata a sender may set to name the delivery, and the header each stands for.
_METADATA_HEADERS = {"newsletter-delivery": "X-Newsletter-Delivery",
                     "newsletter-notification": "X-Newsletter-Notification"}


class ProviderError(Exception):
    """A request we will not act on; `status` is the HTTP answer, `message` says why."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Malformed(ProviderError):
    """Not a payload of this provider (400)."""


class Unavailable(ProviderError):
    """We could not check the request now (the signing certificate did not download): 503, so the
    provider sends it again later."""

    status = 503


class Refused(ProviderError):
    """Not proven to come from the provider (401: no or a wrong signature or credentials;
    403: a proof we do not accept, such as a foreign certificate URL or a replayed token)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Parsed:
    """A verified request's bounce and complaint reports, out of `received` events in all."""

    reports: list[BounceReport] = field(default_factory=list)
    received: int = 0
    note: str = ""
    undo: Callable[[], None] | None = None  # run when recording fails, so the provider's retry is let in


@dataclass
class Outcome:
    """What became of one request's events, for the provider's log and ours."""

    received: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"received": self.received, **self.counts, **({"note": self.note} if self.note else {})}


def record_all(parsed: Parsed) -> Outcome:
    """Record each report (each in its own transaction: `bounces.record` commits). The events
    the request held that are no bounce or complaint count as ignored."""
    outcome = Outcome(received=parsed.received, note=parsed.note)
    counts = {"recorded": 0, "duplicate": 0, "unmatched": 0}
    try:
        for report in parsed.reports:
            status = bounces.record(report).status
            counts[status] = counts.get(status, 0) + 1
    except Exception:
        if parsed.undo:
            parsed.undo()
        raise
    counts["ignored"] = max(0, parsed.received - len(parsed.reports))
    outcome.counts = counts
    return outcome


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("The body is not JSON.") from None


def text(value: Any, limit: int = DIAGNOSTIC_CHARS) -> str:
    """A payload value as a bounded one-line string ("" for anything that is not text or a number)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    return " ".join(str(value).replace("\x00", "").split())[:limit]


def address(value: Any) -> str:
    """A recipient address from a payload, lower case; "" for anything that is not one."""
    found = text(value, 320).lower() if isinstance(value, str) else ""
    return found if "@" in found.strip("@") else ""


def mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def check_fresh(timestamp: Any, max_age: float, now: float | None = None) -> float:
    """The signed timestamp as a number, refused when older (or further ahead) than `max_age` seconds:
    a captured request cannot be replayed later."""
    try:
        value = float(timestamp)
    except (TypeError, ValueError):
        raise Refused("The signature timestamp is missing or not a number.") from None
    if abs((time.time() if now is None else now) - value) > max_age:
        raise Refused(f"The signature timestamp is more than {max_age:g} seconds away from now: refused as stale.")
    return value


_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_REPLY = re.compile(r"\b([45]\d\d)\b")


def status_in(diagnostic: Any) -> str:
    """The enhanced status code ("5.1.1") in a remote server's text, else its reply code ("550")."""
    found = _ENHANCED.search(text(diagnostic)) or _REPLY.search(text(diagnostic))
    return found.group(1) if found else ""


def epoch(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def metadata_headers(metadata: Any) -> dict[str, str]:
    """Custom args / metadata named like our headers (`newsletter-delivery`, `newsletter_delivery`,
    `X-Newsletter-Delivery`...) as those headers."""
    found = {}
    for key, value in mapping(metadata).items():
        name = str(key).lower().replace("_", "-").removeprefix("x-")
        if name in _METADATA_HEADERS and text(value):
            found[_METADATA_HEADERS[name]] = text(value)
    return found


def find(headers: Any = None, message_id: str = "") -> Ref | None:
    """Our delivery or notification from echoed headers, else from our Message-ID."""
    ref = identify.from_headers(headers) if headers else None
    if ref is None and message_id:
        bracketed = message_id if message_id.startswith("<") else f"<{message_id}>"
        ref = identify.from_message_id(bracketed)
    return ref


def find_in_report(raw: Any) -> Ref | None:
    """Our delivery from a whole bounce or complaint message a provider passes on (Postmark's
    `Content`): the original's headers in its message/rfc822 or text/rfc822-headers part."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    report_message = email.message_from_string(raw)
    for part in report_message.walk():
        original: Any = None
        inner = part.get_payload()
        if part.get_content_type() == "message/rfc822" and isinstance(inner, list) and inner:
            original = inner[0]
        elif part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            original = email.message_from_bytes(payload if isinstance(payload, bytes) else b"")
        if isinstance(original, email.message.Message) and (ref := find(original)) is not None:
            return ref
    return None


def report(kind: BounceType, source: str, *, email: Any, ref: Ref | None, status_code: Any = "",
           diagnostic: Any = "", event_id: Any = "", occurred_at: datetime | None = None) -> BounceReport:
    return BounceReport(
        type=kind, source=source, email=address(email),
        delivery_id=ref.ident if ref and ref.kind == "d" else None,
        notification_id=ref.ident if ref and ref.kind == "n" else None,
        status_code=text(status_code, 32) or status_in(diagnostic), diagnostic=text(diagnostic),
        event_id=text(event_id, 255), occurred_at=occurred_at)
