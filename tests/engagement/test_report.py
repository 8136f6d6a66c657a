"""The engagement report and the dashboard comparison: the numbers that must come out of given counters,
and the breakdown counters the flush writes."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import (
    Campaign,
    CampaignLink,
    CampaignStatus,
    EngagementCount,
    EngagementDomainCount,
    EngagementKind,
    EngagementReasonCount,
    EngagementUniqueCount,
    Tracking,
)
from newsletter.services.audience import subscribers
from newsletter.services.engagement import flush, report
from newsletter.services.errors import NotFound

from .conftest import make_campaign

H0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
OPEN, CLICK = EngagementKind.OPEN, EngagementKind.CLICK
SHOP, BLOG = "https://shop.example.com/", "https://blog.example.com/"


def seed_counters(tracking: str = "individual", name: str = "May news", sent: int = 200,
                  started_at: datetime | None = None) -> int:
    """A sent campaign and its counters, as the flush would have written them:
    opens: human 30 (10:00) + 10 (12:00), machine 25 (10:00: 20 apple_mpp, 5 too_soon), 20 unique;
    clicks: shop 8 human (6 unique) + 6 machine (4 scanner, 2 burst) at 10:00, blog 4 human (3 unique)
    at 11:00, 9 unique clickers; domains (individual only): gmail.com 20 opens (+5 machine) and
    8 clicks, outlook.com 10 opens and 4 clicks, d1..d9.example 1 open each."""
    campaign = Campaign(name=name, subject="Hello", from_email="news@example.org", status=CampaignStatus.SENT,
                        tracking=Tracking(tracking), sent=sent, recipients=sent, started_at=started_at)
    db.session.add(campaign)
    db.session.flush()
    shop, blog = CampaignLink(campaign_id=campaign.id, url=SHOP), CampaignLink(campaign_id=campaign.id, url=BLOG)
    db.session.add_all([shop, blog])
    db.session.flush()
    hour = timedelta(hours=1)
    counts = [(OPEN, 0, False, H0, 30), (OPEN, 0, False, H0 + 2 * hour, 10), (OPEN, 0, True, H0, 25),
              (CLICK, shop.id, False, H0, 8), (CLICK, blog.id, False, H0 + hour, 4), (CLICK, shop.id, True, H0, 6)]
    db.session.add_all([EngagementCount(campaign_id=campaign.id, kind=kind, link_id=link, machine=machine, hour=at,
                                        count=n) for kind, link, machine, at, n in counts])
    db.session.add_all([EngagementReasonCount(campaign_id=campaign.id, kind=kind, reason=reason, count=n)
                        for kind, reason, n in ((OPEN, "apple_mpp", 20), (OPEN, "too_soon", 5),
                                                (CLICK, "scanner", 4), (CLICK, "burst", 2))])
    if tracking == "individual":
        db.session.add_all([EngagementUniqueCount(campaign_id=campaign.id, kind=kind, link_id=link, count=n)
                            for kind, link, n in ((OPEN, 0, 20), (CLICK, 0, 9), (CLICK, shop.id, 6),
                                                  (CLICK, blog.id, 3))])
        domains = [("gmail.com", OPEN, False, 20), ("gmail.com", OPEN, True, 5), ("gmail.com", CLICK, False, 8),
                   ("outlook.com", OPEN, False, 10), ("outlook.com", CLICK, False, 4)]
        domains += [(f"d{i}.example", OPEN, False, 1) for i in range(1, 10)]
        db.session.add_all([EngagementDomainCount(campaign_id=campaign.id, kind=kind, domain=domain, machine=machine,
                                                  count=n) for domain, kind, machine, n in domains])
    db.session.commit()
    return campaign.id


def test_individual_report_numbers(app):
    with app.app_context():
        found = report.campaign_engagement(seed_counters("individual"))
        assert (found.tracking, found.sent, found.knows_unique) == ("individual", 200, True)
        assert "unique readers and mail domains are known" in found.note
        opens, clicks = found.opens, found.clicks
        assert (opens.total, opens.unique, opens.machine, opens.rate, opens.machine_share) == (40, 20, 25, 10.0, 38.5)
        assert (clicks.total, clicks.unique, clicks.machine, clicks.rate, clicks.machine_share) == (12, 9, 6, 4.5, 33.3)
        assert found.reasons == {
            "open": {"apple_mpp": 20, "scanner": 0, "bot": 0, "prefetch": 0, "too_soon": 5, "burst": 0},
            "click": {"apple_mpp": 0, "scanner": 4, "bot": 0, "prefetch": 0, "too_soon": 0, "burst": 2}}
        assert found.links == [{"url": SHOP, "clicks": 8, "unique": 6, "machine": 6},
                               {"url": BLOG, "clicks": 4, "unique": 3, "machine": 0}]
        line = found.timeline
        assert (line.unit, line.step, line.starts) == ("hour", timedelta(hours=1), [H0, H0 + timedelta(hours=1),
                                                                                     H0 + timedelta(hours=2)])
        assert line.series == {"opens": [30, 0, 10], "opens_machine": [25, 0, 0], "clicks": [8, 4, 0],
                               "clicks_machine": [6, 0, 0]}
        top = [(row.domain, row.opens, row.opens_machine, row.clicks, row.clicks_machine) for row in found.domains]
        assert top[:2] == [("gmail.com", 20, 5, 8, 0), ("outlook.com", 10, 0, 4, 0)]
        assert [row[0] for row in top[2:8]] == [f"d{i}.example" for i in range(1, 7)]  # ties by name
        assert top[8:] == [("other", 3, 0, 0, 0)] and len(top) == report.TOP_DOMAINS + 1


def test_anonymous_report_knows_no_uniques_and_no_domains(app):
    with app.app_context():
        found = report.campaign_engagement(seed_counters("anonymous"))
        assert (found.opens.unique, found.clicks.unique, found.domains, found.knows_unique) == (None, None, None, False)
        assert (found.opens.rate, found.clicks.rate) == (20.0, 6.0)  # every human event per 100 sent
        assert "mail domains cannot be known" in found.note
        assert found.links[0] == {"url": SHOP, "clicks": 8, "unique": None, "machine": 6}


def test_timeline_starts_at_the_send_and_long_tails_are_merged(app):
    with app.app_context():
        found = report.campaign_engagement(seed_counters(started_at=H0 - timedelta(minutes=90)))
        assert found.timeline.starts[0] == H0 - timedelta(hours=2)
        assert found.timeline.series["opens"] == [0, 0, 30, 0, 10]
        campaign_id = seed_counters(name="Long tail")
        db.session.add(EngagementCount(campaign_id=campaign_id, kind=OPEN, link_id=0, machine=False,
                                       hour=H0 + timedelta(days=10), count=7))
        db.session.commit()
        line = report.timeline(campaign_id)
        assert line.step == timedelta(hours=3) and len(line.starts) <= report.TIMELINE_POINTS
        # 10:00 and 12:00 share a bucket
        assert sum(line.series["opens"]) == 47 and line.series["opens"][0] == 40 and line.series["opens"][-1] == 7
        assert line.starts[-1] == H0 + timedelta(days=10)


def test_report_and_timeline_of_an_unknown_campaign_are_not_found(app):
    with app.app_context():
        for call in (report.campaign_engagement, report.timeline_buckets, report.link_stats):
            with pytest.raises(NotFound):
                call(999999)


def test_an_untouched_campaign_reports_zeros(app):
    with app.app_context():
        campaign = Campaign(name="Quiet", subject="Hi", from_email="news@example.org", tracking=Tracking.INDIVIDUAL)
        db.session.add(campaign)
        db.session.commit()
        found = report.campaign_engagement(campaign.id)
        assert (found.opens.total, found.opens.rate, found.opens.machine_share, found.timeline, found.domains) == (
            0, None, None, None, [])
        assert report.timeline_buckets(campaign.id) == {"tracking": "individual", "buckets": []}


def test_recent_rates_compare_the_last_tracked_sent_campaigns_oldest_first(app):
    with app.app_context():
        first = seed_counters("individual", name="First", started_at=H0)
        second = seed_counters("anonymous", name="Second", sent=50, started_at=H0 + timedelta(days=1))
        off = seed_counters("off", name="Untracked", started_at=H0 + timedelta(days=2))
        db.session.add(Campaign(name="Draft", subject="x", from_email="news@example.org", tracking=Tracking.ANONYMOUS))
        db.session.commit()
        rows = report.recent_rates(limit=8)
        assert [row.campaign.id for row in rows] == [first, second]
        assert (rows[0].opens.rate, rows[0].clicks.rate, rows[1].opens.rate, rows[1].clicks.rate) == (
            10.0, 4.5, 80.0, 24.0)
        assert [row.campaign.id for row in report.recent_rates(limit=1)] == [second]
        assert off not in [row.campaign.id for row in rows]


def test_flush_counts_machines_by_reason_and_individual_events_by_domain(app, audience):
    list_id, people = audience
    with app.app_context():
        gmail = subscribers.create("Reader@GMail.com", list_ids=[list_id]).id
        individual, anonymous = make_campaign(list_id, "individual"), make_campaign(list_id, "anonymous")
        links = [CampaignLink(campaign_id=campaign_id, url=SHOP) for campaign_id in (individual, anonymous)]
        db.session.add_all(links)
        db.session.commit()
        at = 1_800_000_000
        batch = [["open", individual, 0, gmail, 0, "", at], ["open", individual, 0, gmail, 1, "apple_mpp", at],
                 ["open", individual, 0, people[0], 0, "", at],
                 ["click", individual, links[0].id, gmail, 1, "scanner", at],
                 ["open", anonymous, 0, 0, 1, "apple_mpp", at], ["click", anonymous, links[1].id, 0, 1, "burst", at]]
        assert flush.apply("report-1", batch)
        assert not flush.apply("report-1", batch)  # a retried batch counts nothing twice
        assert report.reasons(individual)["open"]["apple_mpp"] == 1
        assert report.reasons(individual)["click"]["scanner"] == 1
        assert report.reasons(anonymous)["open"]["apple_mpp"] == 1 and report.reasons(anonymous)["click"]["burst"] == 1
        rows = db.session.execute(select(EngagementDomainCount.campaign_id, EngagementDomainCount.kind,
                                         EngagementDomainCount.domain, EngagementDomainCount.machine,
                                         EngagementDomainCount.count)).all()
        assert sorted((c, k.value, d, m, n) for c, k, d, m, n in rows) == [
            (individual, "click", "gmail.com", True, 1), (individual, "open", "example.com", False, 1),
            (individual, "open", "gmail.com", False, 1), (individual, "open", "gmail.com", True, 1)]
        assert [(r.domain, r.opens, r.opens_machine, r.clicks_machine) for r in report.domains(individual)] == [
            ("example.com", 1, 0, 0), ("gmail.com", 1, 1, 1)]  # one human open each: by name
