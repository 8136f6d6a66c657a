"""A campaign's totals on its row (recipients, sent, failed, cancelled), counted from the ledger."""
from __future__ import annotations

from sqlalchemy import update

from ...extensions import db
from ...models import Campaign, CampaignStatus
from ...models.base import utcnow
from ..delivery.ledger import counts

_NO_SYNC = {"synchronize_session": False}


def record_totals(campaign_id: int) -> dict[str, int]:
    """Totals on the campaign row, from the Delivery table (never incremented)."""
    by_status = counts(campaign_id)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(
        recipients=sum(by_status.values()), sent=by_status["sent"], failed=by_status["failed"],
        cancelled=by_status["cancelled"], totals_at=utcnow(), updated_at=Campaign.updated_at)
        .execution_options(**_NO_SYNC))
    db.session.commit()
    return by_status


def add_to_totals(campaign_id: int, sent: int, failed: int) -> None:
    """Running totals while sending, from the chord's results; `record_totals` makes them exact."""
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id,
                                              Campaign.status == CampaignStatus.SENDING).values(
        sent=Campaign.sent + sent, failed=Campaign.failed + failed, totals_at=utcnow(),
        updated_at=Campaign.updated_at)  # totals are not an edit: keep the compiled-template cache key
        .execution_options(**_NO_SYNC))
    db.session.commit()
