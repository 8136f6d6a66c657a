"""Campaign reports and dashboard series: exact numbers from a seeded delivery ledger (real database)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsletter.extensions import db
from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber
from newsletter.services.campaigns import reports

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
D = DeliveryStatus


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def seed_campaign(**overrides) -> int:
    """A finished send of 15 deliveries over 4 min 30 s; see the expected numbers in the tests."""
    values = dict(name="May news", subject="Hello", from_email="news@example.org", status=CampaignStatus.SENT,
                  started_at=T0, snapshot_at=T0, finished_at=at(4.5), skipped_suppressed=4, skipped_unsubscribed=3,
                  skipped_unconfirmed=2, duplicates=1)
    campaign = Campaign(**{**values, **overrides})
    db.session.add(campaign)
    db.session.flush()
    rows = [(D.SENT, at(m), None, "") for m in (0.1, 0.2, 0.3, 0.8, 2.1, 2.5, 4.3)]
    rows += [(D.FAILED, at(1.5), 550, "550 5.1.1 User unknown"), (D.FAILED, at(1.6), 550, "550 5.2.2 Mailbox full"),
             (D.FAILED, at(3.0), 550, "550 5.1.1 User unknown"), (D.FAILED, at(3.7), 421, "421 Try again later"),
             (D.FAILED, at(4.0), None, "ConnectionRefusedError: [Errno 111]")]
    rows += [(D.CANCELLED, at(4.4), None, ""), (D.CANCELLED, at(4.4), None, ""), (D.PENDING, at(0), None, "")]
    for i, (status, moment, code, message) in enumerate(rows):
        db.session.add(Delivery(campaign_id=campaign.id, email=f"r{i}@example.org", status=status, smtp_code=code,
                                smtp_message=message, updated_at=moment, created_at=T0,
                                sent_at=moment if status == D.SENT else None))
    db.session.commit()
    return campaign.id


def test_campaign_report_numbers(app):
    with app.app_context():
        report = reports.campaign_report(seed_campaign())

        assert report.by_status == {"pending": 1, "queued": 0, "sending": 0, "committing": 0, "sent": 7,
                                    "failed": 5, "cancelled": 2}
        assert (report.total, report.pending, report.retryable) == (15, 1, 7)

        line = report.per_minute
        assert line.step == timedelta(minutes=1)
        assert line.starts == [at(m) for m in range(5)]
        assert line.series["sent"] == [4, 0, 2, 0, 1]
        assert line.series["failed"] == [0, 2, 0, 2, 1]

        assert [(g.smtp_code, g.count, g.example, g.kind) for g in report.failures] == [
            (550, 3, "550 5.1.1 User unknown", "permanent"),
            (421, 1, "421 Try again later", "temporary"),
            (None, 1, "ConnectionRefusedError: [Errno 111]", "no answer"),
        ]
        assert report.exclusions == {"suppressed": 4, "unsubscribed": 3, "unconfirmed": 2, "duplicate": 1}
        assert report.excluded == 10
        assert report.duration_seconds == 270 and report.peak == (4, at(0))
        assert report.average_rate == pytest.approx(7 / 270)


def test_report_of_a_draft_is_empty_and_a_long_send_is_drawn_in_wider_buckets(app):
    with app.app_context():
        draft = Campaign(name="Draft", subject="s", from_email="news@example.org")
        db.session.add(draft)
        db.session.commit()
        empty = reports.campaign_report(draft.id)
        assert (empty.total, empty.per_minute, empty.failures, empty.duration_seconds) == (0, None, [], None)

        long_id = seed_campaign(name="Long")
        db.session.get(Campaign, long_id).finished_at = at(600)  # ten hours: 601 minutes
        db.session.commit()
        line = reports.campaign_report(long_id).per_minute
        assert line.step == timedelta(minutes=5) and len(line.starts) == 121
        assert line.series["sent"][:2] == [7, 0] and sum(line.series["sent"]) == 7
        assert sum(line.series["failed"]) == 5


def test_delivery_activity_per_hour_and_per_day(app):
    with app.app_context():
        seed_campaign()
        now = at(60 * 5 + 30)  # 15:30 the same day
        hours = reports.delivery_activity("hour", 24, now=now)
        assert len(hours.starts) == 24
        assert hours.starts[-1] == at(300) and hours.starts[0] == at(300) - timedelta(hours=23)
        assert hours.series["sent"][-6:] == [7, 0, 0, 0, 0, 0]
        assert hours.series["failed"][-6:] == [5, 0, 0, 0, 0, 0]
        assert sum(hours.series["sent"]) == 7

        days = reports.delivery_activity("day", 30, now=now + timedelta(days=2))
        assert len(days.starts) == 30 and days.series["sent"][-3:] == [7, 0, 0] and days.series["failed"][-3] == 5
        # Outside the window: nothing.
        assert sum(reports.delivery_activity("hour", 24, now=now + timedelta(days=3)).series["sent"]) == 0


def test_subscriber_growth_counts_new_per_day_and_the_running_total(app):
    with app.app_context():
        for i, days_ago in enumerate([200, 100, 5, 5, 2, 0]):
            db.session.add(Subscriber(email=f"s{i}@example.org", created_at=T0 - timedelta(days=days_ago, hours=-1)))
        db.session.commit()
        growth = reports.subscriber_growth(days=90, now=T0 + timedelta(hours=2))
        assert len(growth.starts) == 90 and growth.starts[-1] == T0.replace(hour=0)
        assert growth.series["new"][-6:] == [2, 0, 0, 1, 0, 1]
        assert growth.series["total"][0] == 2 and growth.series["total"][-6:] == [4, 4, 4, 5, 5, 6]


def test_recent_campaigns_carry_their_progress(app):
    with app.app_context():
        sent_id = seed_campaign()
        draft = Campaign(name="Draft", subject="s", from_email="news@example.org")
        db.session.add(draft)
        db.session.commit()
        rows = reports.recent_campaigns(limit=5)
        assert [r.campaign.id for r in rows] == [draft.id, sent_id]
        assert (rows[0].done, rows[0].total, rows[0].percent) == (0, 0, 0.0)
        assert (rows[1].done, rows[1].total, rows[1].percent) == (14, 15, 93.3)
