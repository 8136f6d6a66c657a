"""The IMAP side of the bounce mailbox: connect from BOUNCE_MAILBOX_URL, list, fetch and move
messages by UID, in batches (one FETCH and one MOVE per batch, not per message).

Moving is the only change this module makes to a mailbox: MOVE (RFC 6851) where the server
offers it, else COPY, flag the copied UIDs \\Deleted and UID EXPUNGE exactly those (RFC 4315),
which is a move too. Without UIDPLUS the originals stay flagged \\Deleted, unread by later polls,
rather than run a plain EXPUNGE that would also remove what someone else flagged.
"""
from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
_UID = re.compile(rb"\bUID (\d+)")


class MailboxUrlError(ValueError):
    """BOUNCE_MAILBOX_URL cannot be used; the message says why without the password."""


@dataclass(frozen=True)
class MailboxUrl:
    scheme: str      # imap | imaps
    host: str
    port: int
    user: str
    password: str
    folder: str      # the folder bounces arrive in, INBOX by default

    @property
    def name(self) -> str:
        """user@host:port/folder: for logs and lease keys, never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.folder}"


def parse_url(url: str) -> MailboxUrl:
    """imap://user:password@host:port/INBOX (imaps:// for TLS); user and password percent-encoded."""
    parts = urlsplit(url.strip())
    if parts.scheme not in DEFAULT_PORTS:
        raise MailboxUrlError(f"must start with imap:// or imaps://, got {parts.scheme or 'no'} scheme")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise MailboxUrlError("has a port that is not a number") from None
    if not parts.hostname or not parts.username:
        raise MailboxUrlError("must name a user and a host (imap://user:password@host:port/INBOX)")
    return MailboxUrl(parts.scheme, parts.hostname, port, unquote(parts.username), unquote(parts.password or ""),
                      unquote(parts.path.strip("/")) or "INBOX")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _uid_set(uids: Iterable[int]) -> str:
    """1,2,3,7,8 -> "1:3,7:8" (short commands for big batches)."""
    ranges: list[list[int]] = []
    for uid in sorted(uids):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


class ImapError(RuntimeError):
    """The server refused a command (the poll stops; the next one starts over)."""


class Mailbox:
    """One logged-in session with the bounce folder selected."""

    def __init__(self, url: MailboxUrl, timeout: float) -> None:
        self.url = url
        self.created: set[str] = set()
        if url.scheme == "imaps":
            self.conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=ssl.create_default_context(),
                                                         timeout=timeout)
        else:
            self.conn = imaplib.IMAP4(url.host, url.port, timeout=timeout)
        try:
            self.conn.login(url.user, url.password)
            _, data = self.conn.capability()
            self.capabilities = set((data[0] or b"").decode().upper().split()) if data else set()
            self._check(self.conn.select(_quoted(url.folder)), f"SELECT {url.folder}")
        except Exception:
            self.close()
            raise

    def _check(self, response: tuple[str, list], what: str) -> list:
        status, data = response
        if status != "OK":
            raise ImapError(f"{what}: {status} {data!r}"[:300])
        return data

    def ensure_folder(self, folder: str) -> None:
        """Create `folder` unless it exists (once per session)."""
        if folder in self.created:
            return
        status, data = self.conn.create(_quoted(folder))
        if status != "OK" and b"ALREADYEXISTS" not in b" ".join(d for d in data if isinstance(d, bytes)).upper():
            # Servers without the ALREADYEXISTS code: it is there if we can see it.
            listed = self._check(self.conn.list("", _quoted(folder)), f"LIST {folder}")
            if not any(d for d in listed if d):
                raise ImapError(f"CREATE {folder}: {status} {data!r}"[:300])
        self.created.add(folder)

    def uids(self) -> list[int]:
        """The UIDs in the bounce folder, oldest first (skipping originals a COPY fallback left flagged)."""
        data = self._check(self.conn.uid("SEARCH", "UNDELETED"), "UID SEARCH")
        return sorted(int(uid) for uid in (data[0] or b"").split())

    def fetch(self, uids: list[int]) -> Iterator[tuple[int, bytes]]:
        """(uid, whole message) for each of `uids` still there, without setting \\Seen."""
        data = self._check(self.conn.uid("FETCH", _uid_set(uids), "(UID BODY.PEEK[])"), "UID FETCH")
        for item in data:
            if isinstance(item, tuple) and len(item) == 2 and (match := _UID.search(item[0])):
                yield int(match.group(1)), item[1]

    def move(self, uids: list[int], folder: str) -> None:
        """Move `uids` to `folder` (created if missing)."""
        if not uids:
            return
        self.ensure_folder(folder)
        uid_set = _uid_set(uids)
        if "MOVE" in self.capabilities:
            status, data = self.conn.uid("MOVE", uid_set, _quoted(folder))
            if status != "OK" and b"EXPUNGEISSUED" in b" ".join(d for d in data if isinstance(d, bytes)):
                # Another session moved some of them first: move what is still here.
                still = self._check(self.conn.uid("SEARCH", "UID", uid_set), "UID SEARCH")
                if (still[0] or b"").split():
                    self._check(self.conn.uid("MOVE", _uid_set(int(u) for u in still[0].split()), _quoted(folder)),
                                f"UID MOVE {folder}")
            else:
                self._check((status, data), f"UID MOVE {folder}")
        else:
            self._check(self.conn.uid("COPY", uid_set, _quoted(folder)), f"UID COPY {folder}")
            self._check(self.conn.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
            if "UIDPLUS" in self.capabilities:
                self._check(self.conn.uid("EXPUNGE", uid_set), "UID EXPUNGE")
        # imaplib keeps every untagged reply (EXPUNGE, COPYUID, …) until read: drop them per batch.
        self.conn.untagged_responses.clear()

    def close(self) -> None:
        try:
            self.conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the session is over either way
