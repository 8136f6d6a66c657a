"""One caught message: the Maildir it lives in, its parsed parts and the links in its HTML."""
from __future__ import annotations

import email
import email.policy
import mailbox
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

LINK_SCHEMES = ("http://", "https://", "mailto:")


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


@dataclass(frozen=True)
class Link:
    href: str
    text: str


def open_outbox(directory: str | Path) -> mailbox.Maildir:
    """Open (creating if needed) the Maildir; shared by the mail catcher and the outbox pages."""
    path = Path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path, create=True)  # creates cur/new/tmp only when `path` is new
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    return box


class _LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self._open: list[str] | None = None
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = (dict(attrs).get("href") or "").strip()
            self._open = []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            text = " ".join("".join(self._open).split())
            if self._href.lower().startswith(LINK_SCHEMES):
                self.links.append(Link(self._href, text))
            self._open = None


def links(html: str) -> list[Link]:
    """The http(s) and mailto links of an HTML body, in order, each href once (its first text).

    Other schemes (javascript:, data:) are left out: the list is there to be clicked."""
    collector = _LinkCollector()
    collector.feed(html)
    collector.close()
    seen: dict[str, Link] = {}
    for link in collector.links:
        seen.setdefault(link.href, link)
    return list(seen.values())


_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
_HTML_OR_DOCTYPE = re.compile(r"<html\b[^>]*>|<!doctype[^>]*>", re.IGNORECASE)


def framed_html(html: str) -> str:
    """The body for the preview iframe: links open in a new tab (`<base target="_blank">`).

    Put inside <head> (or after <html>/the doctype) so a doctype stays first and the page does
    not fall into quirks mode."""
    base = '<base target="_blank">'
    for pattern in (_HEAD, _HTML_OR_DOCTYPE):
        match = pattern.search(html)
        if match:
            return html[: match.end()] + base + html[match.end():]
    return base + html
