"""Amazon SNS message signatures: the string SNS signs, the signing certificate it names (fetched
only from an SNS host, cached), and the subscription confirmation.

SignatureVersion 1 is RSA PKCS#1 v1.5 over SHA-1, version 2 over SHA-256, of "Name\\nvalue\\n" for
the type's fields in this order (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html).
The certificate URL (and a SubscribeURL) must match SES_SNS_CERT_URL_PATTERN, by default an
https://sns.<region>.amazonaws.com/ address: a message cannot bring its own certificate.
"""
from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from flask import current_app

from .common import Malformed, Refused, Unavailable

DEFAULT_URL_PATTERN = r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
CERT_MAX_BYTES = 64 * 1024
CERT_CACHE_SECONDS = 24 * 3600
CERT_CACHE_SIZE = 32
FETCH_TIMEOUT = 5.0

_cache: dict[str, tuple[rsa.RSAPublicKey, float]] = {}
_cache_lock = threading.Lock()


def string_to_sign(message: Mapping[str, Any]) -> bytes:
    """The bytes SNS signed for this message; a field of the wrong kind is a 400."""
    fields = SIGNED_FIELDS.get(message.get("Type"))  # type: ignore[arg-type]
    if fields is None:
        raise Malformed("Type must be Notification, SubscriptionConfirmation or UnsubscribeConfirmation.")
    parts = []
    for name in fields:
        value = message.get(name)
        if name == "Subject" and value is None:
            continue  # signed only when the publisher gave one
        if not isinstance(value, str):
            raise Malformed(f"The SNS field {name} is missing or not a string.")
        parts.append(f"{name}\n{value}\n")
    return "".join(parts).encode("utf-8")


def allowed_url(url: Any) -> bool:
    """An https://sns.<region>.amazonaws.com/ address (or what SES_SNS_CERT_URL_PATTERN allows)."""
    if not isinstance(url, str) or any(ch.isspace() or ch == "\\" for ch in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None:
        return False
    pattern = current_app.config.get("SES_SNS_CERT_URL_PATTERN") or DEFAULT_URL_PATTERN
    return re.match(pattern, url) is not None


def verify(message: Mapping[str, Any]) -> None:
    """Raise unless SNS signed `message` with the certificate its SigningCertURL names."""
    signed = string_to_sign(message)
    version = message.get("SignatureVersion")
    if version not in HASHES:
        raise Refused("SignatureVersion must be 1 or 2.")
    try:
        signature = base64.b64decode(str(message.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("The SNS signature is not base64.") from None
    url = message.get("SigningCertURL")
    # A certificate address has no query: one more `?x` must not mean one more download.
    parts = urlsplit(str(url)) if allowed_url(url) else None
    if parts is None or not parts.path.endswith(".pem") or parts.query or parts.fragment:
        raise Refused("SigningCertURL is not an Amazon SNS certificate address: refused.", 403)
    key = signing_key(str(url))
    try:
        key.verify(signature, signed, padding.PKCS1v15(), HASHES[str(version)]())
    except InvalidSignature:
        raise Refused("The SNS signature does not match the message.") from None


def signing_key(url: str) -> rsa.RSAPublicKey:
    """The public key of the certificate at `url`, fetched once a day at most."""
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(url)
        if cached and cached[1] > now:
            return cached[0]
    try:
        cert = x509.load_pem_x509_certificate(fetch(url, CERT_MAX_BYTES))
    except ValueError:
        raise Refused("SigningCertURL does not hold a PEM certificate.", 403) from None
    moment = datetime.now(UTC)
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise Refused("The SNS signing certificate is not valid now.", 403)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("The SNS signing certificate does not hold an RSA key.", 403)
    with _cache_lock:
        if len(_cache) >= CERT_CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[url] = (key, now + CERT_CACHE_SECONDS)
    return key


def confirm(subscribe_url: Any) -> None:
    """Confirm a subscription by loading its SubscribeURL (same address rule as the certificates)."""
    if not allowed_url(subscribe_url):
        raise Refused("SubscribeURL is not an Amazon SNS address: refused.", 403)
    fetch(str(subscribe_url), CERT_MAX_BYTES)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere; the address we checked is the only one we load."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(url: str, limit: int) -> bytes:
    """GET `url` (checked by the caller), with a timeout, no redirects and at most `limit` bytes."""
    context = ssl.create_default_context(cafile=current_app.config.get("SES_SNS_CA_FILE") or None)
    opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
    try:
        with opener.open(url, timeout=FETCH_TIMEOUT) as response:
            body: bytes = response.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise Refused(f"Amazon SNS answered {exc.code} for {urlsplit(url).path}.", 403) from None
    except (OSError, ValueError) as exc:  # URLError, timeouts, TLS failures
        raise Unavailable(f"Could not reach Amazon SNS ({type(exc).__name__}); try again later.") from None
    if len(body) > limit:
        raise Refused("The SNS answer is larger than a certificate.", 403)
    return body
