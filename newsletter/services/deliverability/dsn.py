"""Read one message from the bounce mailbox: a delivery status notification (RFC 3464), a
complaint (ARF, RFC 5965), a non-standard bounce (qmail, old Exim and Postfix, Exchange, Yahoo,
Gmail's plain text, …), or none of these: auto-replies, vacation notices, challenge-responses
and stray mail, which never count against a subscriber.

Pure parsing, no database: `parse(raw)` returns a `Parsed` that says what the message is, each
failed recipient with its type (status_codes.py decides hard or soft), and what it carries to
find our delivery (the addresses the bounce was sent to, where the VERP token is; the original
message's headers). mailbox.py matches and records it.

RFC 3464 reports are read here; for the formats without a standard, flufl.bounce (the detectors
of GNU Mailman) finds the failed addresses, and this module adds the status codes and words.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, message_from_string
from email.message import Message
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from flufl.bounce import all_failures

from .status_codes import HARD, SOFT, best_code, classify, enhanced_code, reply_code

BOUNCE, COMPLAINT, AUTOREPLY, OTHER = "bounce", "complaint", "autoreply", "other"
COMPLAINT_FEEDBACK_TYPES = {"", "abuse", "fraud", "virus", "other"}  # not: not-spam, auth-failure (DMARC)
DIAGNOSTIC_CHARS = 500

# A bounce by its sender or subject, when it follows no standard.
_DAEMON = re.compile(
    r"^(?:mailer-daemon|postmaster|mail-?daemon|mdaemon|bounces?|nobody)@|mail delivery (?:sub)?system", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status )?notification|delivery (?:has )?failed|failure notice|returned mail"
    r"|mail delivery (?:failed|failure|problem)|non-?deliver|delivery problem|could not be delivered|returned to sender"
    r"|delivery failure|mail system error|unable to deliver|warning: could not send|delivery report|delayed mail"
    r"|message not delivered|mail error|cannot be delivered"
    r"|nicht zustellbar|unzustellbar|no se puede entregar|non remis",
    re.I)
# RFC 3834 and what the big mail systems put on automatic replies.
_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-auto-response-suppress", "x-apple-action",
                 "x-mailautoreply", "x-vacation")
_AUTO_PRECEDENCE = re.compile(r"auto[_-]?reply", re.I)
_AUTO_SUBJECT = re.compile(
    r"auto(?:matic)?[ -]?(?:reply|response|antwort|respuesta|réponse)|autoreply|out of (?:the )?office|\bOOO\b|\bOOF\b"
    r"|vacation|away from|abwesenheit|absence|on leave|i am away|i'm away|away until"
    r"|(?:please )?confirm (?:your )?(?:message|e-?mail|request)|verify (?:your|that you)|awaits? verification"
    r"|challenge|spam ?arrest|whitelist|approval",
    re.I)
# The returned message's Message-ID and our headers, as plain-text bounces quote them.
_QUOTED_HEADER = re.compile(r"^(Message-ID|X-Newsletter-Delivery|X-Newsletter-Notification):[ \t]*(\S[^\r\n]*)",
                            re.I | re.M)
_PLUS_ADDRESS = re.compile(r"[\w.!#$%&'*/=?^`{|}~-]+\+[\w.-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True)
class Failure:
    type: str                 # "hard" | "soft" | "complaint"
    email: str = ""           # the failed recipient, when the report names one
    status_code: str = ""     # "5.1.1", else the SMTP reply "550", else ""
    diagnostic: str = ""      # the remote server's words


@dataclass(frozen=True)
class Parsed:
    verdict: str                                   # BOUNCE | COMPLAINT | AUTOREPLY | OTHER
    failures: tuple[Failure, ...] = ()
    message_id: str = ""                           # the bounce's own Message-ID
    event_id: str = ""                             # stable per message: its Message-ID, else a hash of it
    envelope: tuple[str, ...] = ()                 # where the bounce was delivered: the VERP address
    original: dict[str, str] = field(default_factory=dict)   # headers of the returned message
    quoted_addresses: tuple[str, ...] = ()         # plus-addresses in the body (a quoted Return-Path)
    occurred_at: datetime | None = None

    @property
    def is_bounce(self) -> bool:
        return self.verdict in (BOUNCE, COMPLAINT)


def parse(raw: bytes) -> Parsed:
    """What `raw` (one whole message as the mailbox stores it) is and says."""
    msg = message_from_bytes(raw)
    text = _text_of(msg)
    verdict, failures = _read(msg, text)
    message_id = " ".join((msg.get("Message-ID") or "").split())
    return Parsed(
        verdict=verdict,
        failures=tuple(failures),
        message_id=message_id,
        event_id=message_id[:190] if len(message_id) >= 6 else "sha256:" + hashlib.sha256(raw).hexdigest(),
        envelope=_envelope(msg),
        original=_original_headers(msg, text),
        quoted_addresses=tuple(dict.fromkeys(_PLUS_ADDRESS.findall(text))),
        occurred_at=_date(msg),
    )


def _read(msg: Message, text: str) -> tuple[str, list[Failure]]:
    report_type = (msg.get_param("report-type", header="content-type") or "")
    report_type = report_type.lower() if isinstance(report_type, str) else ""
    feedback = _first_part(msg, "message/feedback-report")
    if feedback is not None or report_type == "feedback-report":
        return _complaint(msg, feedback)
    status = _first_part(msg, "message/delivery-status")
    if status is not None:
        failures = _dsn_failures(status, text)
        if failures:
            return BOUNCE, failures
        if _delivered_only(status):
            return OTHER, []  # a success notice (Action: delivered / relayed / expanded)
    bounce_shaped = _looks_like_bounce(msg)
    if not bounce_shaped and _looks_automatic(msg):
        return AUTOREPLY, []
    failures = _plain_failures(msg, text)
    if failures:
        return BOUNCE, failures
    if bounce_shaped or status is not None:
        kind = classify(_text_code(text), text, fallback=SOFT if _is_warning(msg) else HARD) or HARD
        return BOUNCE, [Failure(kind, "", _text_code(text), _diagnostic(text))]
    return OTHER, []


# --- RFC 3464 ------------------------------------------------------------------------------

def _first_part(msg: Message, content_type: str) -> Message | None:
    return next((part for part in msg.walk() if part.get_content_type() == content_type), None)


def _blocks(part: Message) -> list[Message]:
    """The header blocks of a message/delivery-status part (per-message, then per-recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload.decode("latin-1") if isinstance(payload, bytes) else str(payload or "")
    return [message_from_string(chunk.strip() + "\n") for chunk in re.split(r"\r?\n\s*\r?\n", text) if chunk.strip()]


def _dsn_failures(part: Message, human: str) -> list[Failure]:
    failures: list[Failure] = []
    for block in _blocks(part):
        action = (block.get("Action") or "").strip().lower()
        # The address as we sent it, if the report keeps it; the final one may be a local alias.
        recipient = _address_field(block.get("Original-Recipient")) or _address_field(block.get("Final-Recipient"))
        if not action and not recipient:
            continue  # the per-message block
        if action and not action.startswith(("fail", "delay", "error")):
            continue  # delivered, relayed, expanded
        status = " ".join((block.get("Status") or "").split())
        diagnostic = _diagnostic(_address_field(block.get("Diagnostic-Code"), keep_text=True) or human)
        code = best_code(status, diagnostic)
        fallback = SOFT if action.startswith("delay") else HARD
        kind = SOFT if action.startswith("delay") else classify(code, diagnostic, fallback)
        if kind and all(recipient != seen.email for seen in failures):  # some MTAs repeat a block per hop
            failures.append(Failure(kind, recipient, code, diagnostic))
    return failures


def _delivered_only(part: Message) -> bool:
    actions = [(block.get("Action") or "").strip().lower() for block in _blocks(part)]
    return any(actions) and all(a.startswith(("delivered", "relayed", "expanded")) for a in actions if a)


def _address_field(value: object, keep_text: bool = False) -> str:
    """`rfc822; user@example.com` -> `user@example.com` (`smtp; 550 …` -> `550 …` with keep_text)."""
    text = " ".join(str(value or "").split())
    if ";" in text:
        text = text.split(";", 1)[1].strip()
    if keep_text:
        return text
    return parseaddr(text)[1].strip("<>").lower() if "@" in text else ""


# --- ARF (RFC 5965) ------------------------------------------------------------------------

def _complaint(msg: Message, report: Message | None) -> tuple[str, list[Failure]]:
    fields = _blocks(report)[0] if report is not None and _blocks(report) else Message()
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if feedback_type not in COMPLAINT_FEEDBACK_TYPES:
        return OTHER, []  # a DMARC failure report or a "not spam" vote: not a complaint
    email = _address_field(fields.get("Original-Rcpt-To")) or _address_field(fields.get("Removal-Recipient"))
    if not email:
        original = _original_message(msg)
        addresses = [a for _, a in getaddresses([original.get("To", "")])] if original is not None else []
        email = addresses[0].lower() if len(addresses) == 1 and "@" in addresses[0] else ""
    return COMPLAINT, [Failure("complaint", email, "", f"feedback-type: {feedback_type or 'abuse'}")]


# --- non-standard bounces -----------------------------------------------------------------

def _plain_failures(msg: Message, text: str) -> list[Failure]:
    missing_from = msg.get("From") is None
    if missing_from:
        msg["From"] = "<>"  # some bounces have none, and one detector fails without it
    try:
        temporary, permanent = all_failures(msg)
    except Exception:  # a detector tripping over a malformed message must not stop the poll
        return []
    finally:
        if missing_from:
            del msg["From"]
    code = _text_code(text)
    diagnostic = _diagnostic(text)
    failures = []
    for addresses, fallback in ((permanent, HARD), (temporary, SOFT)):
        for address in sorted(addresses):
            email = address.decode("ascii", "replace").lower()
            kind = SOFT if fallback == SOFT else classify(code, diagnostic, fallback) or fallback
            failures.append(Failure(kind, email, code, diagnostic))
    return failures


def _looks_like_bounce(msg: Message) -> bool:
    sender = parseaddr(msg.get("From") or "")[1] + " " + (msg.get("From") or "")
    return bool(_DAEMON.search(sender.strip()) or _BOUNCE_SUBJECT.search(msg.get("Subject") or ""))


def _looks_automatic(msg: Message) -> bool:
    auto = (msg.get("Auto-Submitted") or "no").strip().lower()
    if not auto.startswith("no") or any(msg.get(name) is not None for name in _AUTO_HEADERS):
        return True
    if _AUTO_PRECEDENCE.search(msg.get("Precedence") or ""):
        return True
    return bool(_AUTO_SUBJECT.search(msg.get("Subject") or ""))


def _is_warning(msg: Message) -> bool:
    return bool(re.search(r"warning|delay|still|not yet|will retry", msg.get("Subject") or "", re.I))


def _text_code(text: str) -> str:
    return enhanced_code(text) or reply_code(text)


def _diagnostic(text: str) -> str:
    """The lines that say why, without the returned message: the first lines with a code, else the start."""
    body = re.split(r"\n-{2,}.*(?:original message|copy of the message|returned message|message headers)|"
                    r"\n--- Below this line|\nReturn-Path:|\nReceived:", text, maxsplit=1, flags=re.I)[0]
    lines = [" ".join(line.split()) for line in body.splitlines() if line.strip()]
    coded = [line for line in lines if _text_code(line) or re.search(r"unknown|exist|full|quota|reject", line, re.I)]
    return " ".join(coded or lines)[:DIAGNOSTIC_CHARS]


# --- what identifies the delivery ----------------------------------------------------------

def _envelope(msg: Message) -> tuple[str, ...]:
    found: list[str] = []
    for name in ("X-Original-To", "Delivered-To", "Envelope-To", "X-Envelope-To", "To", "X-Failed-Recipients"):
        for value in msg.get_all(name) or []:
            found.extend(address for _, address in getaddresses([str(value)]) if address)
    return tuple(dict.fromkeys(found))


def _original_message(msg: Message) -> Message | None:
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/rfc822-headers"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
        if kind == "text/rfc822-headers":
            data = part.get_payload(decode=True)
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(part.get_payload())
            return message_from_string(text.lstrip())
    return None


def _original_headers(msg: Message, text: str) -> dict[str, str]:
    """The returned message's headers we can match on: its MIME part, else lines quoted in the text."""
    found: dict[str, str] = {}
    original = _original_message(msg)
    if original is not None:
        for name in ("Return-Path", "Message-ID", "X-Newsletter-Delivery", "X-Newsletter-Notification", "To"):
            if original.get(name):
                found[name] = " ".join(str(original.get(name)).split())
    for name, value in _QUOTED_HEADER.findall(text):
        found.setdefault({"message-id": "Message-ID"}.get(name.lower(), name), value.strip())
    return found


def _date(msg: Message) -> datetime | None:
    try:
        return parsedate_to_datetime(msg.get("Date") or "")
    except (TypeError, ValueError, IndexError):
        return None


# --- text ---------------------------------------------------------------------------------

def _walk_text(msg: Message) -> Iterator[str]:
    for part in msg.walk():
        if part.get_content_maintype() == "multipart":
            continue
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            data = part.get_payload(decode=True)
            if isinstance(data, bytes):
                charset = part.get_content_charset() or "latin-1"
                try:
                    yield data.decode(charset, "replace")
                except LookupError:
                    yield data.decode("latin-1")
        elif part.get_content_type() == "message/rfc822":
            return  # the returned original: its words are not the server's


def _text_of(msg: Message) -> str:
    """The human-readable part(s) of the bounce, up to the returned original message."""
    text = "\n".join(_walk_text(msg))
    text = re.sub(r"<[^>]{1,200}>", " ", text) if "<html" in text.lower() else text
    return text.replace("\r\n", "\n")[:20000]
