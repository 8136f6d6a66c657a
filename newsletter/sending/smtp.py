"""SMTP transport: reused connections per worker thread and server (one, or `Sessions` side by side),
timeouts always set, and a fence.

`send` speaks MAIL / RCPT / DATA itself so that it can stop right before the final dot:
the server accepts a message only on that dot, so a caller-supplied `fence` (the ledger's
sending -> committing move) decides there whether the message may still go. If the fence
says no, the connection is dropped and the server discards the unfinished message.
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

from .errors import Kind, SmtpFailure, classify, from_exception
from .message import Envelope

_LEADING_DOT = re.compile(rb"(?m)^\.")
_MAX_LINE = 8192  # smtplib._MAXLINE: the longest reply line smtplib accepts


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    timeout: float = 10.0
    use_tls: bool = False
    use_ssl: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a log line or a traceback

    @classmethod
    def from_config(cls, config: dict) -> SmtpSettings:
        return cls(config["MAIL_SERVER"], int(config["MAIL_PORT"]), float(config["MAIL_TIMEOUT"]),
                   bool(config["MAIL_USE_TLS"]), bool(config["MAIL_USE_SSL"]),
                   config.get("MAIL_USERNAME"), config.get("MAIL_PASSWORD"))


_PLAIN_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


def _angle(address: str) -> str:
    """`smtplib.quoteaddr` for the common case (a bare address) without its parser per call."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


class Fence(Protocol):
    """The ledger's say over the final dot of one message (services.delivery.fences.RowFence)."""

    def acquire(self) -> bool: ...
    def commit_async(self) -> None: ...
    def confirm(self) -> None: ...


class GroupFence(Protocol):
    """The same for several messages at once (services.delivery.fences.GroupFence): one database round trip."""

    def acquire(self, keys: list[int]) -> set[int]: ...
    def commit_async(self) -> None: ...
    def confirm(self) -> None: ...


class _Open:
    def acquire(self) -> bool:
        return True

    def commit_async(self) -> None:
        pass

    def confirm(self) -> None:
        pass


class FenceClosed(Exception):
    """The ledger refused the final dot (the claim was taken over): nothing was sent."""


class Connection:
    """One SMTP session. A message goes through `begin`, `write_body`, `finish` and `reply`;
    `send` runs them in a row, `Sessions` runs them across several connections at once."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False  # RFC 2920: MAIL, RCPT and DATA in one write
        self._envelope: Envelope | None = None
        self._replies: list[tuple[int, bytes]] = []
        self._fresh = False  # opened for the message under way (a reused one may have gone stale)

    def _open(self) -> smtplib.SMTP:
        try:
            return self._connect()
        except smtplib.SMTPAuthenticationError:
            raise
        except (smtplib.SMTPException, OSError) as exc:
            failure = from_exception(exc)
            raise SmtpFailure(failure.kind, failure.code, f"Cannot reach the SMTP server: {failure.message}",
                              unreachable=True) from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        smtp: smtplib.SMTP
        if s.use_ssl:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        # The body and the final dot go out as two writes (the fence sits between them):
        # with Nagle on, the dot would wait ~40 ms for the server's delayed ACK every message.
        assert smtp.sock is not None  # connected by the constructor (it was given a host)
        smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        smtp.ehlo()
        if s.use_tls:
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if s.username and s.password:
            smtp.login(s.username, s.password)
        self.pipelining = smtp.has_extn("pipelining")
        return smtp

    def close(self, polite: bool = True) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is None:
            return
        try:
            if polite:
                smtp.quit()
            else:
                smtp.close()
        except (smtplib.SMTPException, OSError):
            smtp.close()

    def send(self, envelope: Envelope, fence: Fence | None = None) -> tuple[int, str]:
        """Deliver one message; returns (code, text) of the final reply or raises SmtpFailure/FenceClosed."""
        fence = fence or _Open()
        self.begin(envelope)
        self.write_body()
        self.guarded(self._fence, fence)
        self.finish()
        fence.confirm()
        return self.reply()

    def _fence(self, fence: Fence) -> None:
        if not fence.acquire():
            self.drop()
            raise FenceClosed()
        fence.commit_async()  # a failure here drops the session: the dot is never written

    # The phases of one message ------------------------------------------------------------

    def guarded(self, step, *args):
        """Run one step; a broken session is closed and its error classified (SmtpFailure)."""
        try:
            return step(*args)
        except (FenceClosed, SmtpFailure):
            raise
        except (smtplib.SMTPException, OSError) as exc:
            self.close(polite=False)
            raise from_exception(exc) from None
        except BaseException:
            self.close(polite=False)  # e.g. the database failed mid-DATA: never reuse a half-told session
            raise

    def _session(self) -> smtplib.SMTP:
        """The open session: every phase after `begin` has one (only `close` takes it away)."""
        assert self.smtp is not None, "no SMTP session: begin() opens it"
        return self.smtp

    def drop(self) -> None:
        """Abandon the message under way: without its final dot the server throws it away."""
        self.close(polite=False)

    def begin(self, envelope: Envelope) -> None:
        """Open the session if needed and send MAIL, RCPT and DATA (one write with PIPELINING)."""
        self._envelope, self._replies = envelope, []
        if self.smtp is None:
            self._reopen()
            return
        self._fresh = False
        try:
            self.guarded(self._envelope_commands, envelope)
        except SmtpFailure as failure:
            if not self._stale(failure):
                raise
            self._reopen()  # an idle connection the server closed: once more on a new one

    def _stale(self, failure: SmtpFailure) -> bool:
        """A reused session that broke without a word from the server (it timed us out)."""
        return not self._fresh and failure.code is None and failure.kind == Kind.TRANSIENT

    def _reopen(self) -> None:
        """A new session for the message under way, its envelope sent."""
        self.close(polite=False)
        self._fresh = True
        self.smtp = self.guarded(self._open)
        self.guarded(self._envelope_commands, self._envelope)

    def write_body(self) -> None:
        """Read the envelope's replies; if all were yes, write the message without its final dot."""
        try:
            replies = self.guarded(self._read_envelope_replies)
        except SmtpFailure as failure:
            if not self._stale(failure):
                raise
            self._reopen()
            replies = self.guarded(self._read_envelope_replies)
        self.guarded(self._check_and_write, replies)

    def finish(self) -> None:
        """The final dot: from here on the server owns the message."""
        self.guarded(self._write, b".\r\n")

    def reply(self) -> tuple[int, str]:
        code, text = self.guarded(self._getreply)
        message = text.decode("utf-8", "replace")
        kind = classify(code, message)
        if kind != Kind.SENT:
            raise SmtpFailure(kind, code, message)
        return code, message

    # smtplib's `send` and `getreply`, less what they check on every call (the debug level, str
    # input, the audit hook): the same bytes and the same exceptions, a few µs a message cheaper.

    def _write(self, data: bytes) -> None:
        smtp = self._session()
        if smtp.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        try:
            smtp.sock.sendall(data)
        except OSError:
            smtp.close()
            raise smtplib.SMTPServerDisconnected("Server not connected") from None

    def _getreply(self) -> tuple[int, bytes]:
        smtp = self._session()
        file = smtp.file
        if file is None:
            return smtp.getreply()  # it opens the file
        lines = []
        while True:
            try:
                line = file.readline(_MAX_LINE + 1)
            except OSError as exc:
                smtp.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed: " + str(exc)) from None
            if not line:
                smtp.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            if len(line) > _MAX_LINE:
                smtp.close()
                raise smtplib.SMTPResponseException(500, "Line too long.")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                code = -1
                break
            if line[3:4] != b"-":
                break
        return code, b"\n".join(lines)

    def _command(self, smtp: smtplib.SMTP, sent: tuple[int, bytes], ok: tuple[int, ...]) -> None:
        code, text = sent
        if code not in ok:
            message = text.decode("utf-8", "replace")
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.close(polite=False)
            raise SmtpFailure(classify(code, message), code, message)

    def _envelope_commands(self, envelope: Envelope) -> None:
        """MAIL, RCPT, DATA: one write (replies read by `write_body`) with PIPELINING, else one at a time."""
        smtp = self._session()
        if envelope.smtputf8 and not smtp.has_extn("smtputf8"):
            raise SmtpFailure(Kind.PERMANENT, None, "The address is internationalised (non-ASCII) and the SMTP "
                                                    "server does not offer SMTPUTF8.")
        options = ["SMTPUTF8", "BODY=8BITMIME"] if envelope.smtputf8 else []
        if not self.pipelining:
            replies = [smtp.mail(envelope.sender, options)]
            if replies[0][0] == 250:
                replies.append(smtp.rcpt(envelope.recipient))
                if replies[1][0] in (250, 251):
                    replies.append(smtp.docmd("DATA"))
            self._replies = replies
            return
        mail_options = "".join(" " + o for o in options)
        self._write(f"MAIL FROM:{_angle(envelope.sender)}{mail_options}\r\n"
                    f"RCPT TO:{_angle(envelope.recipient)}\r\nDATA\r\n".encode())

    def _read_envelope_replies(self) -> list[tuple[int, bytes]]:
        if self._replies:
            return self._replies
        return [self._getreply(), self._getreply(), self._getreply()]

    def _check_and_write(self, replies: list[tuple[int, bytes]]) -> None:
        smtp, envelope = self._session(), self._envelope
        assert envelope is not None  # set by begin()
        if len(replies) != 3 or replies[0][0] != 250 or replies[1][0] not in (250, 251) or replies[2][0] != 354:
            if len(replies) == 3 and replies[2][0] == 354:
                # A server that said 354 to DATA after refusing MAIL or RCPT: end the empty message.
                self._write(b".\r\n")
                self._getreply()
            self._command(smtp, replies[0], (250,))
            self._command(smtp, replies[1], (250, 251))
            self._command(smtp, replies[2], (354,))
        data = envelope.data
        if data.startswith(b".") or b"\n." in data:  # a scan, not a regex pass over every message
            data = _LEADING_DOT.sub(b"..", data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        self._write(data)


Result = tuple[int, str] | SmtpFailure | FenceClosed


class Sessions:
    """Several sessions to one server driven side by side: a round hands one message to each.

    Every session gets its envelope and body before any final dot, then ONE fence (a single
    database round trip) moves all of the round's rows to `committing`, and the dots follow.
    The server works on all sessions at once, so a round costs about one message's latency,
    and the ledger pays one transaction per round instead of one per message. The crash
    window stays a few socket writes: those between the fence's COMMIT and the last dot.
    """

    def __init__(self, settings: SmtpSettings, size: int) -> None:
        self.settings = settings
        self.connections = [Connection(settings) for _ in range(max(1, size))]

    @property
    def size(self) -> int:
        return len(self.connections)

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

    @staticmethod
    def _unreachable(results: list, pairs: list, failure: SmtpFailure) -> None:
        """The server cannot be reached: the round's other messages wait too, without each
        session spending its own connect timeout on finding that out."""
        for index, (connection, _) in enumerate(pairs):
            if results[index] is None:
                connection.drop()  # it may be mid-envelope: never reuse a half-told session
                results[index] = failure

    def send(self, items: list[tuple[int, Envelope]], fence: GroupFence) -> list[Result]:
        """One round: at most `size` (key, envelope) pairs; a result per pair, in order.

        A recipient's refusal is that pair's SmtpFailure; only a fence error (the ledger is
        unreachable) raises, after every unfinished message was dropped.
        """
        assert len(items) <= self.size
        results: list[Result | None] = [None] * len(items)
        pairs = list(zip(self.connections, items, strict=False))  # fewer items than sessions: the rest idle
        for step in (lambda c, envelope: c.begin(envelope), lambda c, envelope: c.write_body()):
            for index, (connection, (_, envelope)) in enumerate(pairs):
                if results[index] is None:
                    try:
                        step(connection, envelope)
                    except SmtpFailure as failure:
                        results[index] = failure
                        if failure.unreachable:
                            self._unreachable(results, pairs, failure)
        ready = [index for index, result in enumerate(results) if result is None]
        if not ready:
            return cast(list[Result], results)  # none left without a result
        try:
            owned = fence.acquire([items[index][0] for index in ready])
            if owned:
                fence.commit_async()
        except BaseException:
            for index in ready:
                pairs[index][0].drop()
            raise
        finishing = []
        for index in ready:  # right after the COMMIT went out: the dots
            connection = pairs[index][0]
            if items[index][0] not in owned:
                connection.drop()
                results[index] = FenceClosed()
                continue
            try:
                connection.finish()
                finishing.append(index)
            except SmtpFailure as failure:
                results[index] = failure
        if owned:
            fence.confirm()
        for index in finishing:
            try:
                results[index] = pairs[index][0].reply()
            except SmtpFailure as failure:
                results[index] = failure
        return cast(list[Result], results)  # every ready pair got its reply, failure or FenceClosed


_local = threading.local()
MAX_SERVERS = 8  # servers a thread keeps sessions open to (a pool's members); the least recent is closed


def _kept(name: str) -> OrderedDict:
    kept = getattr(_local, name, None)
    if kept is None:
        kept = OrderedDict()
        setattr(_local, name, kept)
    return kept


def _keep(kept: OrderedDict, key: SmtpSettings, current: Connection | Sessions) -> None:
    for old in [k for k in kept if k != key and (k.host, k.port) == (key.host, key.port)]:
        kept.pop(old).close()  # the same server with changed settings (a new password, say)
    kept[key] = current
    kept.move_to_end(key)
    while len(kept) > MAX_SERVERS:
        kept.popitem(last=False)[1].close()


def connection(settings: SmtpSettings) -> Connection:
    """This thread's connection to the server of `settings` (reused across tasks; one per server)."""
    kept = _kept("connections")
    current: Connection | None = kept.get(settings)
    if current is None:
        current = Connection(settings)
    _keep(kept, settings, current)
    return current


def sessions(settings: SmtpSettings, size: int) -> Sessions:
    """This thread's `size` sessions to the server of `settings` (reused across tasks, one set per
    server, replaced when the size changes)."""
    kept = _kept("sessions")
    current: Sessions | None = kept.get(settings)
    if current is None or current.size != max(1, size):
        if current is not None:
            current.close()
        current = Sessions(settings, size)
    _keep(kept, settings, current)
    return current


def verify(settings: SmtpSettings, timeout: float = 5.0) -> str:
    """Connect, EHLO, STARTTLS and log in as a send would, then QUIT; the server's greeting name.

    Raises SmtpFailure (unreachable, TLS, refused login) with the server's own words."""
    conn = Connection(replace(settings, timeout=min(settings.timeout, timeout)))
    try:
        conn.smtp = conn._open()
    except smtplib.SMTPAuthenticationError as exc:
        error = exc.smtp_error
        raise SmtpFailure(Kind.AUTH, exc.smtp_code,
                          error.decode("utf-8", "replace") if isinstance(error, bytes) else error) from None
    try:
        return (conn.smtp.ehlo_resp or b"").decode("utf-8", "replace").split("\n")[0]
    finally:
        conn.close()
