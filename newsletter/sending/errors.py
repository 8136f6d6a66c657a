"""How an SMTP answer or a network error is handled: by code, never by exception type alone.

Every smtplib exception is an OSError, so retrying on OSError would retry permanent 5xx
rejections too. 4xx and broken connections are transient; 5xx are permanent; 421, 454 and
4.7.x mean the server is throttling us; 530/535 mean our credentials are wrong.
"""
from __future__ import annotations

import enum
import smtplib
import socket


class Kind(str, enum.Enum):
    SENT = "sent"
    TRANSIENT = "transient"
    THROTTLED = "throttled"
    PERMANENT = "permanent"
    AUTH = "auth"


class SmtpFailure(Exception):
    def __init__(self, kind: Kind, code: int | None, message: str, unreachable: bool = False) -> None:
        super().__init__(f"{code} {message}")
        self.kind, self.code, self.message = kind, code, message
        # No session could be opened: nothing reached the server, and no recipient is at fault.
        self.unreachable = unreachable


def classify(code: int, message: str = "") -> Kind:
    if 200 <= code < 300:
        return Kind.SENT
    if code in (530, 535):
        return Kind.AUTH
    if code in (421, 454) or message.lstrip().startswith("4.7."):
        return Kind.THROTTLED
    if 400 <= code < 500:
        return Kind.TRANSIENT
    return Kind.PERMANENT


def from_exception(exc: BaseException) -> SmtpFailure:
    if isinstance(exc, SmtpFailure):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return SmtpFailure(Kind.AUTH, exc.smtp_code, _text(exc.smtp_error))
    if isinstance(exc, smtplib.SMTPResponseException):
        return SmtpFailure(classify(exc.smtp_code, _text(exc.smtp_error)), exc.smtp_code, _text(exc.smtp_error))
    if isinstance(exc, (smtplib.SMTPServerDisconnected, ConnectionError, socket.timeout, TimeoutError, OSError)):
        return SmtpFailure(Kind.TRANSIENT, None, f"{type(exc).__name__}: {exc}"[:500])
    raise exc


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
