"""The development outbox: messages the dev mail catcher stored in a Maildir, listed through an index."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import index
from .messages import Link, OutboxMessage, framed_html, links, open_outbox

__all__ = [
    "Link", "OutboxMessage", "OutboxPage", "OutboxSummary", "clear", "deliver", "framed_html", "get_message",
    "links", "list_messages", "open_outbox", "search",
]

PAGE_SIZE = 200
MAX_PAGE = 1_000_000


@dataclass(frozen=True)
class OutboxSummary:
    """A row of the outbox list: what the index knows, without reading the file."""
    key: str
    received_at: datetime
    sender: str
    recipients: str
    subject: str


@dataclass(frozen=True)
class OutboxPage:
    messages: list[OutboxSummary]
    page: int
    per_page: int
    matching: int  # messages the search matches
    total: int  # messages in the outbox

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.matching / self.per_page))

    @property
    def first(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.messages else 0

    @property
    def last(self) -> int:
        return self.first + len(self.messages) - 1 if self.messages else 0


def _received(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def search(directory: str, recipient: str = "", subject: str = "", page: int = 1,
           per_page: int = PAGE_SIZE) -> OutboxPage:
    """Newest first, a page of `per_page`, filtered by substrings of the recipients and subject."""
    open_outbox(directory)
    page = max(1, min(page, MAX_PAGE))  # an absurd ?page= is an empty page, not an overflow
    clause, params = index.where(recipient.strip(), subject.strip())
    with index.connect(directory) as conn:
        index.sync(conn, directory)
        total = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        matching = conn.execute(f"SELECT count(*) FROM messages{clause}", params).fetchone()[0] if clause else total
        rows = conn.execute(
            f"SELECT key, received_ns, sender, recipients, subject FROM messages{clause}"
            " ORDER BY received_ns DESC, key DESC LIMIT ? OFFSET ?",
            [*params, per_page, (page - 1) * per_page],
        ).fetchall()
    summaries = [OutboxSummary(key, _received(ns), sender, rcpt, subj) for key, ns, sender, rcpt, subj in rows]
    return OutboxPage(summaries, page, per_page, matching, total)


def deliver(directory: str | Path, raw: bytes) -> str:
    """Store a caught message (the mail catcher's one write) and index it at once."""
    box = open_outbox(directory)
    with index.connect(directory) as conn:
        return index.add(conn, box, directory, raw)


def get_message(directory: str, key: str) -> OutboxMessage | None:
    open_outbox(directory)
    with index.connect(directory) as conn:
        for attempt in range(2):  # a miss syncs once: the message may be newer than the index
            if attempt:
                index.sync(conn, directory)
            row = conn.execute(
                "SELECT path, received_ns, sender, recipients, subject FROM messages WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                continue
            path, ns, sender, recipients, subject = row
            try:
                raw = (Path(directory) / path).read_bytes()
            except FileNotFoundError:  # moved or removed since the last sync
                continue
            return OutboxMessage(key, _received(ns), sender, recipients, subject, raw)
    return None


def list_messages(directory: str, limit: int = PAGE_SIZE) -> list[OutboxMessage]:
    """The newest `limit` messages, newest first, with their content."""
    found = (get_message(directory, m.key) for m in search(directory, per_page=limit).messages)
    return [message for message in found if message is not None]


def clear(directory: str) -> int:
    box = open_outbox(directory)
    keys = list(box.keys())
    for key in keys:
        box.discard(key)
    with index.connect(directory) as conn:
        index.sync(conn, directory)
    return len(keys)
