"""DKIM: keys per sending domain (generated, activated, retired, deleted) and signing every message.

Signing is done here with `cryptography` (RFC 6376, relaxed/relaxed; RSA-SHA256 and, RFC 8463,
Ed25519-SHA256), not with dkimpy: dkimpy's RSA is pure Python (~8 ms a signature here, against
~0.25 ms through OpenSSL), and we build every message ourselves, so the few parts of DKIM we
need are short. `sign` adds one DKIM-Signature per active key of the From domain, on top of the
message bytes `sending.message.build` made; no key, no signature.

Private keys are stored encrypted as the SMTP password is (Fernet, key derived from SECRET_KEY).
Each process keeps its decrypted signers in memory and reloads them when a change is announced
through Redis (VERSION_KEY; services/versioned.py): a rotation reaches every worker within about
a second.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import re
import time
from dataclasses import dataclass

from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from flask import current_app
from sqlalchemy import select

from ...extensions import db
from ...models import DkimAlgorithm, DkimKey, DkimKeyStatus
from ...models.base import utcnow
from ...sending.message import Envelope
from .. import audit, settings
from ..errors import NotFound, ValidationError
from ..versioned import Versioned

log = logging.getLogger(__name__)

VERSION_KEY = "newsletter:dkim:version"
RSA_SIZES = (2048, 3072, 4096)
# The headers we sign when present (RFC 6376 5.4.1 and the bulk senders' guidelines: the ones
# a receiver shows or acts on). Reply-To too: a changed Reply-To is how a hijacked message phishes.
SIGNED_HEADERS = ("from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type",
                  "list-unsubscribe", "list-unsubscribe-post", "list-id", "feedback-id")
_SELECTOR = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# Keys -----------------------------------------------------------------------------------------

def normalize_domain(raw: str, field: str = "domain") -> str:
    """A sending domain as DNS and d= want it: lower case, IDNA A-labels, no trailing dot."""
    text = (raw or "").strip().lower().rstrip(".")
    if "@" in text:
        text = text.rsplit("@", 1)[1]
    try:
        ascii_name = text.encode("idna").decode("ascii") if text else ""
    except UnicodeError:
        ascii_name = ""
    labels = ascii_name.split(".")
    if len(labels) < 2 or len(ascii_name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValidationError(field, "Enter a domain such as example.com (the part after @ in your From address).")
    return ascii_name


def all_keys() -> list[DkimKey]:
    return list(db.session.scalars(select(DkimKey).order_by(DkimKey.domain, DkimKey.created_at.desc())))


def get(key_id: int) -> DkimKey:
    key = db.session.get(DkimKey, key_id)
    if key is None:
        raise NotFound("DKIM key", key_id)
    return key


def default_selector(algorithm: DkimAlgorithm) -> str:
    """Dated, so a rotation gets a new name: nl202612 (RSA), nl202612e (Ed25519)."""
    return f"nl{utcnow():%Y%m}" + ("e" if algorithm == DkimAlgorithm.ED25519 else "")


def generate(domain: str, selector: str = "", algorithm: DkimAlgorithm = DkimAlgorithm.RSA, bits: int = 2048,
             user_id: int | None = None) -> DkimKey:
    """A new `pending` key for `domain`; it signs once activated (after its TXT record is published)."""
    domain = normalize_domain(domain)
    selector = (selector or "").strip().lower() or default_selector(algorithm)
    if not _SELECTOR.match(selector):
        raise ValidationError("selector", "Letters, digits and hyphens only (at most 63), such as nl202612.")
    if db.session.scalar(select(DkimKey.id).where(DkimKey.domain == domain, DkimKey.selector == selector)):
        raise ValidationError("selector", "%(domain)s already has a key with the selector %(selector)s: choose "
                                          "another.", domain=domain, selector=selector)
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == DkimAlgorithm.RSA:
        if bits not in RSA_SIZES:
            raise ValidationError("bits", "Choose one of %(value)s bits.", value=', '.join(map(str, RSA_SIZES)))
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = private.public_key().public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        bits = 256
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode("ascii")
    key = DkimKey(domain=domain, selector=selector, algorithm=algorithm, bits=bits, status=DkimKeyStatus.PENDING,
                  private_key=settings.encrypt(pem, current_app.config["SECRET_KEY"]),
                  public_key=base64.b64encode(public).decode("ascii"), created_by_id=user_id)
    db.session.add(key)
    db.session.flush()
    audit.record("settings.changed", "settings", "", changed=["DKIM"], dkim="generated", record=key.record_name)
    db.session.commit()
    return key


def activate(key_id: int) -> list[DkimKey]:
    """Sign with this key from now on; the domain's active key of the same algorithm retires. The retired ones."""
    key = get(key_id)
    if key.status == DkimKeyStatus.ACTIVE:
        return []
    retired = list(db.session.scalars(select(DkimKey).where(
        DkimKey.domain == key.domain, DkimKey.algorithm == key.algorithm, DkimKey.status == DkimKeyStatus.ACTIVE)))
    for old in retired:
        old.status = DkimKeyStatus.RETIRED
    key.status, key.activated_at = DkimKeyStatus.ACTIVE, utcnow()
    audit.record("settings.changed", "settings", "", changed=["DKIM"], dkim="activated", record=key.record_name,
                 retired=[old.record_name for old in retired])
    db.session.commit()
    publish_change()
    return retired


def delete(key_id: int) -> DkimKey:
    """Remove a key for good (an active one too: its domain's mail goes out unsigned by it)."""
    key = get(key_id)
    db.session.delete(key)
    audit.record("settings.changed", "settings", "", changed=["DKIM"], dkim="deleted", record=key.record_name)
    db.session.commit()
    publish_change()
    return key


# Signing --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Signer:
    domain: str
    selector: str
    algorithm: DkimAlgorithm
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def signature(self, data: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(hashlib.sha256(data).digest())  # RFC 8463: Ed25519 over the SHA-256 hash


def _relaxed_header(name: str, value: str) -> str:
    return f"{name.lower()}:{' '.join(value.split())}\r\n"  # unfolds and folds WSP runs to one space


_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n)")
_WSP = re.compile(rb"[ \t]+")


def body_hash(body: bytes) -> str:
    """The relaxed body's SHA-256 (RFC 6376 3.4.4), base64."""
    canonical = body
    if b"\t" in body or b"  " in body or b" \r\n" in body:  # our own bodies (base64 parts) have none: no regex
        canonical = _WSP.sub(b" ", _TRAILING_WSP.sub(b"", body))
    canonical = canonical.rstrip(b"\r\n")
    if canonical:
        canonical += b"\r\n"
    return base64.b64encode(hashlib.sha256(canonical).digest()).decode("ascii")


def _split(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """(name, raw value) of each header, in order, and the body."""
    head, _, body = data.partition(b"\r\n\r\n")
    headers: list[tuple[str, str]] = []
    for line in head.decode("utf-8", "surrogateescape").split("\r\n"):
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\r\n" + line)
        else:
            name, _, value = line.partition(":")
            headers.append((name, value))
    return headers, body


def _fold_b64(value: str, width: int = 72) -> str:
    return "\r\n\t".join(value[i:i + width] for i in range(0, len(value), width))


def sign_bytes(data: bytes, signers: list[Signer], now: int | None = None) -> bytes:
    """`data` (CRLF line ends) with one DKIM-Signature header per signer in front."""
    if not signers:
        return data
    headers, body = _split(data)
    present = {name.lower() for name, _ in headers}
    names = [name for name in SIGNED_HEADERS if name in present]
    last = {name.lower(): value for name, value in headers}  # a repeated header: its last instance (5.4.2)
    signed_part = "".join(_relaxed_header(name, last[name]) for name in names)
    tags = f"bh={body_hash(body)}; h={':'.join(names)}; t={now or int(time.time())}"
    out = []
    for signer in signers:
        algorithm = "rsa-sha256" if signer.algorithm == DkimAlgorithm.RSA else "ed25519-sha256"
        value = f" v=1; a={algorithm}; c=relaxed/relaxed; d={signer.domain}; s={signer.selector};\r\n\t{tags};\r\n\tb="
        unsigned = signed_part + _relaxed_header("DKIM-Signature", value)[:-2]  # no CRLF after it (3.7)
        b = base64.b64encode(signer.signature(unsigned.encode("utf-8", "surrogateescape"))).decode("ascii")
        out.append(f"DKIM-Signature:{value}{_fold_b64(b)}\r\n")
    return "".join(out).encode("ascii") + data


def sign(envelope: Envelope, from_email: str) -> Envelope:
    """The envelope signed by every active key of `from_email`'s domain (unchanged without one)."""
    domain = from_email.rpartition("@")[2].lower()
    if not domain.isascii():  # keys are stored under the A-label (xn--...)
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            return envelope
    signers = _signers().get(domain)
    if not signers:
        return envelope
    return dataclasses.replace(envelope, data=sign_bytes(envelope.data, signers))


# The per-process key cache --------------------------------------------------------------------

def _load(secret_key: str) -> dict[str, list[Signer]]:
    # Its own short connection, as settings._stored: the caller may be mid-batch.
    with db.engine.connect() as conn:
        rows = conn.execute(select(DkimKey.domain, DkimKey.selector, DkimKey.algorithm, DkimKey.private_key)
                            .where(DkimKey.status == DkimKeyStatus.ACTIVE).order_by(DkimKey.id)).all()
    found: dict[str, list[Signer]] = {}
    for domain, selector, algorithm, token in rows:
        try:
            pem = settings.decrypt(token, secret_key).encode("ascii")
        except (InvalidToken, ValueError, TypeError):
            log.error("dkim: the key %s._domainkey.%s cannot be decrypted (SECRET_KEY changed?): not signing with it",
                      selector, domain)
            continue
        private = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey))
        found.setdefault(domain, []).append(Signer(domain, selector, algorithm, private))
    return found


_copy: Versioned[dict[str, list[Signer]]] = Versioned("dkim", VERSION_KEY,
                                                     lambda: _load(current_app.config["SECRET_KEY"]))


def _signers() -> dict[str, list[Signer]]:
    return _copy.get()


def undecryptable() -> list[int]:
    """Ids of the keys SECRET_KEY cannot open (the admin page says so)."""
    secret_key = current_app.config["SECRET_KEY"]
    bad = []
    for key in all_keys():
        try:
            settings.decrypt(key.private_key, secret_key)
        except (InvalidToken, ValueError, TypeError):
            bad.append(key.id)
    return bad


def publish_change() -> None:
    """Tell every process to reload its signers (a new version), and reload this one's now."""
    _copy.announce()
