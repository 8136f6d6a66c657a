"""Scrape-time readings: the delivery ledger by state without reading every row."""
from __future__ import annotations

from sqlalchemy import insert, update

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.models.base import utcnow
from newsletter.services import monitoring
from newsletter.services.campaigns import campaigns


def _campaign(status: CampaignStatus, rows: dict[str, int], settled: bool = False, **totals: int) -> int:
    campaign_id = campaigns.create(name="c", subject="s", from_email="a@example.com", html="<p>x</p>", list_ids=[]).id
    now = utcnow()
    values = dict(status=status, finished_at=now if status.finished else None, totals_at=now if settled else None)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(**values, **totals))
    db.session.execute(insert(Delivery), [
        {"campaign_id": campaign_id, "email": f"{state}{i}@example.com", "status": DeliveryStatus(state),
         "created_at": now, "updated_at": now} for state, n in rows.items() for i in range(n)])
    db.session.commit()
    return campaign_id


def test_settled_campaigns_come_from_their_totals_the_others_from_their_rows(app):
    with app.app_context():
        _check()


def _check() -> None:
    # Settled: finished with totals recorded and nothing unsent. Its totals (deliberately not its
    # rows here) are what is counted: its rows are never read.
    _campaign(CampaignStatus.SENT, {"sent": 2}, settled=True, sent=700, failed=30, cancelled=0)
    _campaign(CampaignStatus.SENDING, {"pending": 4, "queued": 3, "sending": 2, "committing": 1, "sent": 5,
                                       "failed": 1})
    # Cancelled with its totals recorded, but a row is still being cancelled: read from its rows.
    _campaign(CampaignStatus.CANCELLED, {"pending": 1, "cancelled": 6, "sent": 1}, settled=True, sent=1, cancelled=6)
    # Finished, totals never recorded after it finished: read from its rows.
    _campaign(CampaignStatus.FAILED, {"failed": 2, "sent": 3})
    assert monitoring.deliveries_by_state() == {
        "pending": 5, "queued": 3, "sending": 2, "committing": 1, "sent": 700 + 5 + 1 + 3, "failed": 30 + 1 + 2,
        "cancelled": 6}
