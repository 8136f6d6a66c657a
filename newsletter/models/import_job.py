"""A CSV import: its options, progress counters and final report."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .base import UTCDateTime, enum_column, utcnow


class ImportStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportMode(str, enum.Enum):
    CONFIRMED = "confirmed"  # add as confirmed subscribers
    OPTIN = "optin"          # add as unconfirmed and send the opt-in email
    UPDATE = "update"        # update existing subscribers only


class ImportJob(Model):
    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(1024))
    size_bytes: Mapped[int] = mapped_column(default=0)
    mode: Mapped[ImportMode] = mapped_column(enum_column(ImportMode), default=ImportMode.CONFIRMED)
    overwrite_attributes: Mapped[bool] = mapped_column(default=False)
    list_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    status: Mapped[ImportStatus] = mapped_column(enum_column(ImportStatus), default=ImportStatus.QUEUED)
    rows: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    suppressed: Mapped[int] = mapped_column(default=0)
    invalid: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)  # repeats of an address earlier in the file
    not_found: Mapped[int] = mapped_column(default=0)   # "update existing only": unknown addresses
    delimiter: Mapped[str] = mapped_column(String(1), default=",")
    bytes_done: Mapped[int] = mapped_column(default=0)
    # The first invalid rows for display: [{"row": n, "email": "...", "reason": "...", "why": {...}}]
    # (`reason` the English sentence the API and the report file give; `why` its template and values,
    # for the page's language: services/audience/import_reasons.py; rows saved before have no `why`);
    # all of them are in the downloadable report file.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Existing subscribers who had left a list of this import: their membership stays unsubscribed.
    left_lists: Mapped[int] = mapped_column(default=0, server_default="0")
    # The first rows skipped or not re-added because the address had unsubscribed (or was
    # suppressed), with why: {"row", "email", "reason", "why"} as in `errors`.
    skipped: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, server_default="[]")
    failure: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def progress(self) -> float:
        return min(1.0, self.bytes_done / self.size_bytes) if self.size_bytes else 0.0
