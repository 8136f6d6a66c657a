"""What the admin sees of bounces and complaints: the log with its filters, totals over the last
30 days, and each recent campaign's complaint rate against the thresholds mailbox providers
hold bulk senders to (Gmail and Yahoo: keep it under 0.3%, aim under 0.1%)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from ...extensions import db
from ...models import Bounce, BounceType, Campaign, CampaignStatus
from ...models.base import utcnow
from ..errors import ValidationError
from ..messages import N_
from ..numbers import MAX_BIGINT, MAX_ID, whole_number
from ..text import one_line

COMPLAINT_WARN = 0.001   # 0.1 %: the rate to stay under
COMPLAINT_ALARM = 0.003  # 0.3 %: providers start refusing mail
WINDOW_DAYS = 30
PAGE = 50


def level(rate: float | None) -> str:
    """"ok", "warn" or "alarm" for a complaint rate; "none" when nothing was sent."""
    if rate is None:
        return "none"
    return "alarm" if rate >= COMPLAINT_ALARM else "warn" if rate >= COMPLAINT_WARN else "ok"


@dataclass(frozen=True)
class Filters:
    type: BounceType | None = None
    domain: str | None = None
    campaign_id: int | None = None

    def as_args(self) -> dict[str, Any]:
        args = {"type": self.type.value if self.type else None, "domain": self.domain,
                "campaign": self.campaign_id}
        return {k: v for k, v in args.items() if v}


def make_filters(type: Any = None, domain: Any = None, campaign: Any = None) -> Filters:
    try:
        kind = BounceType(type) if type else None
    except ValueError:
        raise ValidationError("type", "Unknown type %(type)r.", type=type) from None
    domain = one_line(domain, "domain", 253, label=N_("The domain")).lower().lstrip("@") or None
    if domain and not all(part and all(c.isalnum() or c == "-" for c in part) for part in domain.split(".")):
        raise ValidationError("domain", "A domain such as gmail.com.")
    campaign_id = whole_number(campaign, "campaign", "campaign id", MAX_ID) if campaign else None
    return Filters(kind, domain, campaign_id)


@dataclass(frozen=True)
class Page:
    rows: list[Bounce]
    older: str | None


def page(filters: Filters, cursor: str | None = None, limit: int = PAGE) -> Page:
    query = select(Bounce).order_by(Bounce.id.desc()).limit(limit + 1)
    if filters.type:
        query = query.where(Bounce.type == filters.type)
    if filters.domain:
        escaped = filters.domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Bounce.email.like(f"%@{escaped}", escape="\\"))
    if filters.campaign_id:
        query = query.where(Bounce.campaign_id == filters.campaign_id)
    if cursor:
        query = query.where(Bounce.id < whole_number(cursor, "cursor", "page cursor", MAX_BIGINT))
    rows = list(db.session.scalars(query))
    more = len(rows) > limit
    return Page(rows[:limit], str(rows[limit - 1].id) if more else None)


def summary(days: int = WINDOW_DAYS) -> dict[str, Any]:
    """Reports per type over the last `days`, the messages campaigns sent in that time, and the
    complaint rate (complaints about those campaigns / their messages sent)."""
    since = utcnow() - timedelta(days=days)
    by_type = dict(db.session.execute(select(Bounce.type, func.count()).where(Bounce.created_at >= since)
                                      .group_by(Bounce.type)).all())
    sent, complained = db.session.execute(select(func.coalesce(func.sum(Campaign.sent), 0),
                                                 func.coalesce(func.sum(Campaign.complained), 0))
                                          .where(Campaign.started_at >= since)).one()
    rate = complained / sent if sent else None
    return {"days": days, "hard": by_type.get(BounceType.HARD, 0), "soft": by_type.get(BounceType.SOFT, 0),
            "complaints": by_type.get(BounceType.COMPLAINT, 0), "sent": sent, "complained": complained,
            "complaint_rate": rate, "level": level(rate)}


def campaign_rates(limit: int = 10) -> list[dict[str, Any]]:
    """The last sent campaigns with their bounce and complaint rates (of messages sent)."""
    rows = db.session.scalars(select(Campaign).where(Campaign.status == CampaignStatus.SENT)
                              .order_by(Campaign.finished_at.desc(), Campaign.id.desc()).limit(limit)).all()
    return [campaign_rate(c) for c in rows]


def campaign_rate(campaign: Campaign) -> dict[str, Any]:
    sent = campaign.sent
    complaint_rate = campaign.complained / sent if sent else None
    return {"id": campaign.id, "name": campaign.name, "sent": sent, "bounced": campaign.bounced,
            "complained": campaign.complained, "bounce_rate": campaign.bounced / sent if sent else None,
            "complaint_rate": complaint_rate, "level": level(complaint_rate)}
