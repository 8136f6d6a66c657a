"""A development SMTP server (aiosmtpd) that stores every message in a Maildir.

The admin outbox reads the same Maildir, so a newcomer sees what the platform sends.
"""
from __future__ import annotations

from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ..services.outbox import deliver, open_outbox

MAX_MESSAGE_BYTES = 25 * 1024 * 1024


class MaildirHandler:
    def __init__(self, directory: Path | str) -> None:
        self.directory = directory
        open_outbox(directory)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # Record the envelope: Bcc recipients and bounces show only there.
        trace = (
            f"X-Outbox-Mail-From: {envelope.mail_from}\r\n"
            f"X-Outbox-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
        ).encode()
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        deliver(self.directory, trace + content)  # atomic in the Maildir (tmp/, then new/), and indexed
        return "250 Message accepted for delivery"


def start_mail_catcher(directory: Path | str, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    controller = Controller(
        MaildirHandler(directory), hostname=host, port=port, data_size_limit=MAX_MESSAGE_BYTES,
        enable_SMTPUTF8=True,  # internationalised addresses, like a real relay
    )
    controller.start()
    return controller
