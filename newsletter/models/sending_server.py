"""Sending servers: SMTP servers grouped in pools, each with its own login and limits.

The server of the Settings page (MAIL_* and its SMTP section) is not a row: it is the member
"default" of the pool "default" (services/delivery/servers.py), so a fresh install sends
as before. Rows add servers to that pool or make other pools; a campaign names its pool.
The password is stored encrypted like the SMTP setting's (services.settings.encrypt).
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, utcnow


class SendingServer(Model):
    __tablename__ = "sending_servers"
    __table_args__ = (UniqueConstraint("name", name="uq_sending_servers_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    pool: Mapped[str] = mapped_column(String(64), default="default", index=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(default=587)
    tls: Mapped[str] = mapped_column(String(16), default="starttls")  # none | starttls | tls (settings.TLS_MODES)
    username: Mapped[str] = mapped_column(String(255), default="")
    password_encrypted: Mapped[str] = mapped_column(String(1000), default="")  # Fernet token; "" for none
    # 0: no limit of the server's own (the global SEND_RATE stays the ceiling).
    per_second: Mapped[float] = mapped_column(Float, default=0)
    per_hour: Mapped[int] = mapped_column(default=0)
    per_day: Mapped[int] = mapped_column(default=0)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    def __repr__(self) -> str:
        return f"<SendingServer {self.name} pool={self.pool}>"
