"""One webhook POST, made safely: to vetted addresses only, no redirects, a short reply excerpt.

The host is resolved here and every address checked (net_policy) right before the request,
and the connection goes to one of exactly those addresses: a DNS answer that changes between
the check and the connect (rebinding) is never asked for again. TLS still verifies the
certificate against the host name (SNI included). A refusal is permanent: it will not
change by retrying, so the caller fails the delivery at once.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from . import net_policy

EXCERPT_CHARS = 200  # of the receiver's reply, kept and shown; the rest is never read
_TEXT_TYPES = ("application/json", "application/xml", "application/x-www-form-urlencoded")


@dataclass(frozen=True)
class Reply:
    code: int | None = None
    excerpt: str = ""
    error: str = ""
    refused: bool = False  # the policy refused the address: do not retry


def _connect(addresses: Sequence[net_policy.IPAddress], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first vetted address that answers."""
    error: OSError = OSError("no address to connect to")
    for ip in addresses:
        try:
            return socket.create_connection((str(ip), port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error


class PinnedHTTP(http.client.HTTPConnection):
    """HTTP to `target`, connecting only to `addresses` (already vetted), never resolving again."""

    def __init__(self, target: net_policy.Target, addresses: Sequence[net_policy.IPAddress], timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS likewise; the certificate is verified against the host name, sent as SNI too."""

    def __init__(self, target: net_policy.Target, addresses: Sequence[net_policy.IPAddress], timeout: float):
        self.tls = ssl.create_default_context()  # certificate and host name checked
        super().__init__(target.host, target.port, timeout=timeout, context=self.tls)
        self.addresses = addresses

    def connect(self) -> None:
        raw = _connect(self.addresses, self.port, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def excerpt(raw: bytes, content_type: str) -> str:
    """At most EXCERPT_CHARS of a textual reply, control characters blanked; a note for others."""
    if not raw:
        return ""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not (kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith(("+json", "+xml"))):
        return f"({kind[:60]} reply not shown)"
    text = raw.decode("utf-8", "replace")[:EXCERPT_CHARS]
    return "".join(" " if unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\n\t" else ch for ch in text)


def post(url: str, body: str, headers: dict[str, str], timeout: float,
         allowed: Sequence[net_policy.IPNetwork] = ()) -> Reply:
    """POST `body` to `url` if the policy allows every address it resolves to. Never raises."""
    try:
        target = net_policy.check_url(url, allowed)
        addresses = net_policy.resolve(target, allowed)
    except net_policy.Refused as exc:
        return Reply(error=f"Refused, not sent: {exc}", refused=True)
    except OSError as exc:  # DNS failures: perhaps temporary, so retried
        return Reply(error=f"Cannot resolve {url}: {exc}")
    connection = (PinnedHTTPS if target.scheme == "https" else PinnedHTTP)(target, addresses, timeout)
    try:
        connection.request("POST", target.path, body=body.encode(), headers={
            "Content-Type": "application/json", "User-Agent": "newsletter-webhooks/1", **headers})
        response = connection.getresponse()
        text = excerpt(response.read(4 * EXCERPT_CHARS), response.getheader("Content-Type") or "")
        if 200 <= response.status < 300:
            return Reply(response.status, text)
        note = " (redirects are not followed)" if 300 <= response.status < 400 else ""
        return Reply(response.status, text, f"HTTP {response.status} {response.reason[:100]}{note}")
    except Exception as exc:  # noqa: BLE001  (timeouts, refused connections, TLS, bad answers)
        return Reply(error=f"{type(exc).__name__}: {exc}"[:500])
    finally:
        connection.close()
