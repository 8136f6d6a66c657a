"""DKIM signing keys, one per sending domain, selector and algorithm; the private key encrypted.

A key is `pending` from when it is generated until an admin activates it (after publishing its
DNS TXT record); activating it retires the domain's other active key of the same algorithm,
which is how a key is rotated. Every `active` key of a message's From domain signs it, so an
RSA and an Ed25519 key side by side sign twice (RFC 8463).
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class DkimAlgorithm(enum.Enum):
    RSA = "rsa"
    ED25519 = "ed25519"


class DkimKeyStatus(enum.Enum):
    PENDING = "pending"  # generated; its TXT record may not be published yet: it signs nothing
    ACTIVE = "active"    # signs every message from its domain
    RETIRED = "retired"  # replaced by a newer key; kept until deleted so its record can be removed later


class DkimKey(Model):
    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("domain", "selector"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(253), index=True)  # lower case, IDNA (A-labels)
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[DkimAlgorithm] = mapped_column(enum_column(DkimAlgorithm))
    bits: Mapped[int] = mapped_column(Integer)  # RSA modulus size; 256 for Ed25519
    # Fernet token of the PKCS#8 PEM (key derived from SECRET_KEY, as the SMTP password).
    private_key: Mapped[str] = mapped_column(Text)
    public_key: Mapped[str] = mapped_column(Text)  # the DNS record's p= value (base64)
    status: Mapped[DkimKeyStatus] = mapped_column(enum_column(DkimKeyStatus), default=DkimKeyStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def record_value(self) -> str:
        return f"v=DKIM1; k={self.algorithm.value}; p={self.public_key}"

    def __repr__(self) -> str:
        return f"<DkimKey {self.selector}._domainkey.{self.domain} {self.algorithm.value} {self.status.value}>"
