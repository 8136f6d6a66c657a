"""The development outbox: messages the dev mail catcher stored in a Maildir."""
from __future__ import annotations

import email
import email.policy
import mailbox
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class OutboxMessage:
    key: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str
    raw: bytes

    def parsed(self) -> EmailMessage:
        return email.message_from_bytes(self.raw, policy=email.policy.default)

    def body(self, subtype: str) -> str | None:
        part = self.parsed().get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None

    @property
    def headers(self) -> str:
        head, _, _ = self.raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in self.raw else self.raw.partition(b"\n\n")
        return head.decode("utf-8", "replace")


def open_outbox(directory: str | Path) -> mailbox.Maildir:
    """Open (creating if needed) the Maildir; shared by the mail catcher and the outbox pages."""
    path = Path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path, create=True)  # creates cur/new/tmp only when `path` is new
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    return box


def _load(box: mailbox.Maildir, key: str) -> OutboxMessage:
    message = box.get_message(key)
    raw = message.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    return OutboxMessage(
        key=key,
        received_at=datetime.fromtimestamp(message.get_date(), UTC),
        sender=str(parsed.get("From", "")),
        recipients=str(parsed.get("X-Outbox-Rcpt-To") or parsed.get("To", "")),
        subject=str(parsed.get("Subject", "")),
        raw=raw,
    )


def list_messages(directory: str, limit: int = 200) -> list[OutboxMessage]:
    """The newest `limit` messages, newest first."""
    box = open_outbox(directory)
    keys = sorted(box.keys(), key=lambda k: box.get_message(k).get_date(), reverse=True)
    return [_load(box, key) for key in keys[:limit]]


def get_message(directory: str, key: str) -> OutboxMessage | None:
    box = open_outbox(directory)
    try:
        return _load(box, key)
    except KeyError:
        return None


def clear(directory: str) -> int:
    box = open_outbox(directory)
    keys = list(box.keys())
    for key in keys:
        box.discard(key)
    return len(keys)
