"""A recording SMTP server (aiosmtpd) whose answers a test can script per recipient."""
from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Callable

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from newsletter.devserver.mailcatcher import MaildirHandler

from .net import free_port

# rule(recipient, attempt_number) -> None to accept, or an SMTP reply such as "451 4.3.0 later"
Rule = Callable[[str, int], "str | None"]


class RecordingHandler(MaildirHandler):
    """Keeps every accepted message in memory by recipient, and in the outbox Maildir."""

    def __init__(self, maildir: str, pipelining: bool = True) -> None:
        super().__init__(maildir)
        self.pipelining = pipelining
        self.rcpt_rule: Callable[[str], str | None] = lambda rcpt: None
        self.lock = threading.Lock()
        self.received: dict[str, list[bytes]] = defaultdict(list)
        self.senders: dict[str, list[str]] = defaultdict(list)  # MAIL FROM of each message, by recipient
        self.attempts: dict[str, int] = defaultdict(int)
        self.rule: Rule = lambda rcpt, attempt: None
        self.data_delay = 0.0  # seconds the reply to a message's final dot takes (a slow server)

    async def handle_EHLO(self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
                          responses: list[str]) -> list[str]:
        # Like Postfix, advertise PIPELINING (aiosmtpd reads pipelined commands one by one anyway).
        session.host_name = hostname
        if not self.pipelining:
            return responses
        return responses[:-1] + ["250-PIPELINING"] + responses[-1:]  # the last line ends the reply

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        refused = self.rcpt_rule(address)
        if refused:
            return refused
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.attempts[rcpt] += 1
                reply = self.rule(rcpt, self.attempts[rcpt])
                if reply:
                    return reply
            for rcpt in envelope.rcpt_tos:
                self.received[rcpt].append(content)
                self.senders[rcpt].append(envelope.mail_from or "")
        if self.data_delay:
            await asyncio.sleep(self.data_delay)  # the message is in; only the answer is late
        return await super().handle_DATA(server, session, envelope)

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.senders.clear()
            self.attempts.clear()
            self.rule = lambda rcpt, attempt: None
            self.rcpt_rule = lambda rcpt: None
            self.data_delay = 0.0

    def count(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.received.values())

    def duplicates(self) -> dict[str, int]:
        with self.lock:
            return {rcpt: len(v) for rcpt, v in self.received.items() if len(v) > 1}


class RecordingSmtpServer:
    """`login`: (username, password) the server requires (AUTH PLAIN, no TLS on loopback)."""

    def __init__(self, maildir: str, port: int | None = None, pipelining: bool = True, smtputf8: bool = True,
                 login: tuple[str, str] | None = None) -> None:
        self.handler = RecordingHandler(maildir, pipelining)
        self.port = port or free_port()
        self.smtputf8 = smtputf8
        self.login = login
        self.logins: list[str] = []  # every username that authenticated
        self.controller = self._controller()

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = self.login is not None and isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(), auth_data.password.decode()) == self.login
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    def _controller(self) -> Controller:
        # PLAIN only: after a refused PLAIN, smtplib's LOGIN fallback stalls against aiosmtpd.
        auth = dict(auth_required=True, auth_require_tls=False, authenticator=self._authenticate,
                    auth_exclude_mechanism=["LOGIN"]) if self.login else {}
        # ready_timeout: aiosmtpd's default of 5 s to start its thread and answer a first connection
        # is short on a busy machine ("failed to start within allotted time ... too busy"); CI runs
        # two test sessions at once on two cores.
        return Controller(self.handler, hostname="127.0.0.1", port=self.port, data_size_limit=25 * 1024 * 1024,
                          enable_SMTPUTF8=self.smtputf8, ready_timeout=60, **auth)

    def start(self) -> RecordingSmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Listen again on the same port (after `stop`, to simulate an outage)."""
        self.controller = self._controller()
        self.controller.start()
