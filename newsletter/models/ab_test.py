"""A/B tests: a campaign's variants (subject, optionally from-name and body), what decides the winner."""
from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class AbMetric(str, enum.Enum):
    """What the winner is picked by: distinct subscribers with a human open (a human click counts
    as an open too: the pixel may have been blocked) or with a human click."""
    OPENS = "opens"
    CLICKS = "clicks"


class AbMode(str, enum.Enum):
    AUTO = "auto"  # after the wait, beat picks the best variant and sends it to the rest
    MANUAL = "manual"  # the marketer picks (campaign report or the API)


VARIANT_LABELS = ("A", "B", "C", "D")


class AbVariant(Model):
    """One variant of an A/B-tested campaign; empty `from_name`/`html`: the campaign's own."""
    __tablename__ = "ab_variants"
    __table_args__ = (UniqueConstraint("campaign_id", "label", name="uq_ab_variants_campaign_label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(1))  # A-D, in order
    subject: Mapped[str] = mapped_column(String(500))
    from_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    html: Mapped[str] = mapped_column(Text, default="", server_default="")

    def __repr__(self) -> str:
        return f"<AbVariant c{self.campaign_id} {self.label}>"
