"""SMTP transport: one reused connection per worker thread, timeouts always set, and a fence.

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
from dataclasses import dataclass, field, replace
from typing import Protocol

from .errors import Kind, SmtpFailure, classify, from_exception
from .message import Envelope

_LEADING_DOT = re.compile(rb"(?m)^\.")


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
    def from_config(cls, config: dict) -> "SmtpSettings":
        return cls(config["MAIL_SERVER"], int(config["MAIL_PORT"]), float(config["MAIL_TIMEOUT"]),
                   bool(config["MAIL_USE_TLS"]), bool(config["MAIL_USE_SSL"]),
                   config.get("MAIL_USERNAME"), config.get("MAIL_PASSWORD"))


class Fence(Protocol):
    """The ledger's say over the final dot (deliveries.RowFence)."""

    def acquire(self) -> bool: ...
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
    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None
        self.pipelining = False  # RFC 2920: MAIL, RCPT and DATA in one write

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
        if s.use_ssl:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        # The body and the final dot go out as two writes (the fence sits between them):
        # with Nagle on, the dot would wait ~40 ms for the server's delayed ACK every message.
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
        try:
            return self._send(envelope, fence or _Open())
        except (FenceClosed, SmtpFailure):
            raise
        except smtplib.SMTPServerDisconnected as exc:
            self.close(polite=False)
            raise from_exception(exc) from None
        except (smtplib.SMTPException, OSError) as exc:
            self.close(polite=False)
            raise from_exception(exc) from None
        except BaseException:
            self.close(polite=False)  # e.g. the database failed mid-DATA: never reuse a half-told session
            raise

    def _command(self, smtp: smtplib.SMTP, sent: tuple[int, bytes], ok: tuple[int, ...]) -> None:
        code, text = sent
        if code not in ok:
            message = text.decode("utf-8", "replace")
            try:
                smtp.rset()
            except (smtplib.SMTPException, OSError):
                self.close(polite=False)
            raise SmtpFailure(classify(code, message), code, message)

    def _envelope_commands(self, envelope: Envelope) -> list[tuple[int, bytes]]:
        """MAIL, RCPT, DATA: one write and three replies with PIPELINING, else one at a time."""
        smtp = self.smtp
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
            return replies
        mail_options = "".join(" " + o for o in options)
        smtp.send(f"MAIL FROM:{smtplib.quoteaddr(envelope.sender)}{mail_options}\r\n"
                  f"RCPT TO:{smtplib.quoteaddr(envelope.recipient)}\r\nDATA\r\n".encode("utf-8"))
        return [smtp.getreply(), smtp.getreply(), smtp.getreply()]

    def _send(self, envelope: Envelope, fence: Fence) -> tuple[int, str]:
        if self.smtp is None:
            self.smtp = self._open()
            replies = self._envelope_commands(envelope)
        else:
            try:
                replies = self._envelope_commands(envelope)
            except smtplib.SMTPServerDisconnected:  # an idle connection the server closed: once more
                self.close(polite=False)
                self.smtp = self._open()
                replies = self._envelope_commands(envelope)
        smtp = self.smtp
        if len(replies) == 3 and replies[2][0] == 354 and (replies[0][0] != 250 or replies[1][0] not in (250, 251)):
            # A server that said 354 to DATA after refusing MAIL or RCPT: end the empty message.
            smtp.send(b".\r\n")
            smtp.getreply()
        self._command(smtp, replies[0], (250,))
        self._command(smtp, replies[1], (250, 251))
        self._command(smtp, replies[2], (354,))
        data = _LEADING_DOT.sub(b"..", envelope.data)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        smtp.send(data)
        if not fence.acquire():
            self.close(polite=False)  # no final dot: the server throws the message away
            raise FenceClosed()
        try:
            fence.commit_async()
        except Exception:
            self.close(polite=False)  # the ledger could not record the hand-over: do not hand over
            raise
        smtp.send(b".\r\n")  # right after the COMMIT went out: the crash window is these two writes
        fence.confirm()
        code, text = smtp.getreply()
        message = text.decode("utf-8", "replace")
        if classify(code, message) != Kind.SENT:
            raise SmtpFailure(classify(code, message), code, message)
        return code, message


_local = threading.local()


def connection(settings: SmtpSettings) -> Connection:
    """This thread's connection for `settings` (reused across tasks; reopened when settings change)."""
    current: Connection | None = getattr(_local, "connection", None)
    if current is None or current.settings != settings:
        if current is not None:
            current.close()
        current = _local.connection = Connection(settings)
    return current


def verify(settings: SmtpSettings, timeout: float = 5.0) -> str:
    """Connect, EHLO, STARTTLS and log in as a send would, then QUIT; the server's greeting name.

    Raises SmtpFailure (unreachable, TLS, refused login) with the server's own words."""
    conn = Connection(replace(settings, timeout=min(settings.timeout, timeout)))
    try:
        conn.smtp = conn._open()
    except smtplib.SMTPAuthenticationError as exc:
        raise SmtpFailure(Kind.AUTH, exc.smtp_code, exc.smtp_error.decode("utf-8", "replace")) from None
    try:
        return (conn.smtp.ehlo_resp or b"").decode("utf-8", "replace").split("\n")[0]
    finally:
        conn.close()


def send_once(settings: SmtpSettings, envelope: Envelope) -> tuple[int, str]:
    """A single message on its own connection (test sends, notifications)."""
    conn = Connection(settings)
    try:
        return conn.send(envelope)
    finally:
        conn.close()
