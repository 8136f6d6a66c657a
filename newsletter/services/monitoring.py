"""What GET /metrics reads at scrape time: ledger rows by state, campaigns by status, the recent
campaigns' sent/bounced/complained sums, and the depth of each Celery queue.

Nothing here reads a whole ledger: they grow by millions of rows a day, and a GROUP BY over a
million deliveries alone costs ~0.3 s of PostgreSQL (docs/operations.md). Deliveries of settled
campaigns (finished, their totals recorded after the last move, no row left unsent) are summed
from those totals; the other campaigns' rows are grouped by state through the (campaign_id,
status) index. Notifications are counted in their unsent states only (the (status, updated_at)
index); how many were sent is newsletter_messages_total's. The broker answers a passive declare
per queue, with a timeout. The result is kept METRICS_CACHE_SECONDS, so several scrapers (or a
retry) cost one reading. A reading that fails leaves its gauges out and says so in
`newsletter_state_up`.
"""
from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, select

from ..config import QUEUES
from ..extensions import db
from ..metrics import instruments as m
from ..models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Notification, NotificationStatus
from ..models.base import utcnow
from . import health

RECENT_DAYS = 7
_cache: dict[str, Any] = {"at": -1e9, "readings": []}
_lock = threading.Lock()


def readings() -> list[Any]:
    """[((name, help, labels), {label values: value}), ...], cached a few seconds."""
    ttl = current_app.config["METRICS_CACHE_SECONDS"]
    with _lock:  # one reading at a time: concurrent scrapes wait for it rather than repeat it
        if time.monotonic() - _cache["at"] >= ttl:
            _cache["readings"], _cache["at"] = _read(), time.monotonic()
        return _cache["readings"]


def _read() -> list[Any]:
    found: list[Any] = []
    up = {}
    try:
        found += _database()
        up["database"] = 1.0
    except Exception:  # noqa: BLE001  (the database is down: its gauges are missing, state_up says why)
        db.session.rollback()
        up["database"] = 0.0
    depths = health.queue_depths(QUEUES)
    up["broker"] = 0.0 if any(depth is None for depth in depths.values()) else 1.0
    if up["broker"]:
        found.append((m.QUEUE_DEPTH, {(name,): float(depth or 0) for name, depth in depths.items()}))
    found.append((m.STATE_UP, {(source,): value for source, value in up.items()}))
    return found


def _by_status(model: Any, states: Any, where: Any = None) -> dict[str, int]:
    query = select(model.status, func.count()).group_by(model.status)
    rows = db.session.execute(query if where is None else query.where(where)).all()
    counts = {status.value: int(n) for status, n in rows}
    return {state.value: counts.get(state.value, 0) for state in states}


def deliveries_by_state() -> dict[str, int]:
    """Every delivery row by state: settled campaigns' totals plus the other campaigns' rows."""
    unsent = select(Delivery.id).where(Delivery.campaign_id == Campaign.id,
                                       Delivery.status.in_([s for s in DeliveryStatus if not s.terminal]))
    # Every column tested for NULL first: `~settled` must be true, not NULL, for an unsettled campaign.
    settled = and_(Campaign.status.in_([s for s in CampaignStatus if s.finished]), Campaign.finished_at.is_not(None),
                   Campaign.totals_at.is_not(None),
                   Campaign.totals_at >= Campaign.finished_at, ~unsent.exists())
    counts = _by_status(Delivery, DeliveryStatus, Delivery.campaign_id.in_(select(Campaign.id).where(~settled)))
    totals = db.session.execute(select(*(func.coalesce(func.sum(column), 0) for column in (
        Campaign.sent, Campaign.failed, Campaign.cancelled))).where(settled)).one()
    for state, n in zip(("sent", "failed", "cancelled"), totals, strict=True):
        counts[state] += int(n)
    return counts


def _database() -> list[Any]:
    ledger = {("deliveries", state): float(n) for state, n in deliveries_by_state().items()}
    unsent = [s for s in NotificationStatus if not s.terminal]
    ledger |= {("notifications", state): float(n) for state, n in
               _by_status(Notification, unsent, Notification.status.in_(unsent)).items()}
    campaigns = {(status,): float(n) for status, n in _by_status(Campaign, CampaignStatus).items()}
    since = utcnow() - timedelta(days=RECENT_DAYS)
    sent, bounced, complained = db.session.execute(
        select(func.coalesce(func.sum(Campaign.sent), 0), func.coalesce(func.sum(Campaign.bounced), 0),
               func.coalesce(func.sum(Campaign.complained), 0)).where(Campaign.started_at >= since)).one()
    db.session.commit()  # end the read
    totals = {("sent",): float(sent), ("bounced",): float(bounced), ("complained",): float(complained)}
    return [(m.LEDGER_ROWS, ledger), (m.CAMPAIGNS, campaigns), (m.CAMPAIGN_TOTALS, totals)]
