"""What a test across namespaces (tests/support/netns.py) asks of the platform, run on one of the
hosts with the platform's environment; answers one JSON object on stdout.

    python -m tests.support.netns_driver prepare N      # a list of N, a campaign to it, sent now
    python -m tests.support.netns_driver status ID      # the campaign's status, ledger and who sent what
"""
from __future__ import annotations

import json
import sys

from sqlalchemy import func, select

from newsletter import create_app
from newsletter.extensions import db
from newsletter.models import Campaign, Delivery, DeliveryAttempt, DeliveryStatus
from newsletter.services.delivery import ledger
from tests.pipeline.conftest import make_audience, make_campaign, start


def prepare(app, n: int) -> dict:
    list_id, emails = make_audience(n, prefix="host")
    campaign_id = make_campaign([list_id])
    start(app, campaign_id)
    return {"campaign_id": campaign_id, "emails": emails}


def status(campaign_id: int) -> dict:
    campaign = db.session.get(Campaign, campaign_id)
    return {"status": campaign.status.value, "ledger": {k: v for k, v in ledger.counts(campaign_id).items() if v},
            "sent_by": _by_host(campaign_id, [DeliveryStatus.SENT]),
            # claimed and not yet recorded, by host: read right after a cut, what the cut host held
            "held_by": _by_host(campaign_id, [DeliveryStatus.SENDING, DeliveryStatus.COMMITTING]),
            "recovered": _recovered(campaign_id)}


def _by_host(campaign_id: int, statuses: list[DeliveryStatus]) -> dict[str, int]:
    counts: dict[str, int] = {}  # by host: the worker names are "<host>@<host> pid <pid>"
    for worker, n in db.session.execute(
            select(Delivery.worker, func.count()).where(Delivery.campaign_id == campaign_id,
                                                        Delivery.status.in_(statuses))
            .group_by(Delivery.worker)):
        host = (worker or "?").split("@")[0]
        counts[host] = counts.get(host, 0) + n
    return counts


def _recovered(campaign_id: int) -> list[str]:
    rows = db.session.scalars(
        select(DeliveryAttempt.smtp_message).join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
        .where(Delivery.campaign_id == campaign_id, DeliveryAttempt.worker == "sweeper").distinct()).all()
    return sorted(rows)


def main(command: str, value: str) -> None:
    app = create_app()
    with app.app_context():
        answer = prepare(app, int(value)) if command == "prepare" else status(int(value))
    print(json.dumps(answer))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
