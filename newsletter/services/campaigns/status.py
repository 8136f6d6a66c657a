"""The campaign state machine: which status may follow which, and the one function that moves it.

Every status change goes through `transition`: a user's (send, schedule, pause, resume,
cancel, retry: `campaigns`), the scheduler's, and the send engine's (finish: `dispatch`;
pause after errors: `send`). Each is one conditional UPDATE, so two racing moves cannot both happen.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import update

from ...extensions import db
from ...models import Campaign, CampaignStatus
from ...models.base import utcnow

S = CampaignStatus
# Every allowed move; anything else is refused. Only the send engine moves sending -> sent.
TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING}),
    S.SCHEDULED: frozenset({S.DRAFT, S.SENDING, S.CANCELLED}),
    S.SENDING: frozenset({S.PAUSED, S.SENT, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.SENDING, S.CANCELLED, S.FAILED}),
    # Back to sending only to retry transient failures and cancelled rows (campaigns.retry_failed).
    S.SENT: frozenset({S.SENDING}),
    S.CANCELLED: frozenset({S.SENDING}),
    S.FAILED: frozenset(),
}


def transition(campaign_id: int, to: CampaignStatus, reason: str = "", commit: bool = True, **columns: Any) -> bool:
    """Move the campaign to `to` if its current status allows it; atomic, safe under races.

    `commit=False` leaves the transaction open for the caller to add to (an outbox event).
    """
    allowed_from = [status for status, targets in TRANSITIONS.items() if to in targets]
    row = db.session.execute(
        update(Campaign).where(Campaign.id == campaign_id, Campaign.status.in_(allowed_from))
        .values(status=to, status_reason=reason, updated_at=utcnow(), **columns)
        .returning(Campaign.id).execution_options(synchronize_session=False)
    ).first()
    if commit:
        db.session.commit()
    return row is not None
