"""The audit log: each audited change records exactly one event, in its own transaction, naming
who did it (a user, an API key, or the system); a refused change records none."""
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, Campaign, CampaignStatus
from newsletter.services import audit
from newsletter.services.accounts import api_keys
from newsletter.services.audience import gdpr, imports, lists, subscribers
from newsletter.services.campaigns import campaigns
from newsletter.services.errors import ValidationError
from newsletter.services.webhooks import webhooks
from tests.api.conftest import api, api_key  # noqa: F401  (fixtures: a marketer key's client)

GOOD = dict(name="News", subject="Hello", from_email="news@example.com", html="<p>Hi</p>")


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def _events(app=None) -> list[tuple[str, str, str, str]]:
    def read():
        rows = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(e.action, e.actor, e.target_type, e.target_id) for e in rows]
    if app is None:
        return read()
    with app.app_context():
        return read()


def _ready_campaign() -> int:
    news = lists.create("News", "single")
    subscribers.create("member@example.com", list_ids=[news.id])
    return campaigns.create(**GOOD, list_ids=[news.id]).id


def test_an_event_outside_a_request_is_by_the_system_and_commits_with_its_caller(ctx):
    when = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    event = audit.record("settings.changed", "settings", None, changed=["SEND_RATE"], at_time=when,
                         status=CampaignStatus.SENT)
    db.session.rollback()  # the caller's change failed: no event either
    assert _events() == []

    audit.record("settings.changed", "settings", "", changed=("SEND_RATE",), at_time=when, status=CampaignStatus.SENT)
    db.session.commit()
    event = db.session.scalar(select(AuditEvent))
    assert (event.actor, event.user_id, event.api_key_id, event.ip) == ("system", None, None, "")
    assert event.details == {"changed": ["SEND_RATE"], "at_time": "2026-05-01T12:00:00+00:00", "status": "sent"}
    assert event.at is not None


def test_the_cli_can_name_itself(ctx):
    audit.set_actor("cli")
    audit.record("user.created", "user", 7)
    db.session.commit()
    assert _events() == [("user.created", "cli", "user", "7")]


def test_campaign_moves_through_the_api_are_by_the_key(app, api):  # noqa: F811
    with app.app_context():
        campaign_id = _ready_campaign()
        key_id = db.session.scalar(select(AuditEvent.target_id).where(AuditEvent.action == "api_key.created"))
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for path, body in [("send", {"send_at": later}), ("unschedule", None), ("send", None), ("pause", None),
                       ("resume", None), ("cancel", None)]:
        response = api.post(f"/api/v1/campaigns/{campaign_id}/{path}", json=body)
        assert response.status_code in (200, 202), response.get_json()
    # Refused moves (the campaign is cancelled): 409, and no event.
    for path in ("send", "pause", "resume", "cancel"):
        assert api.post(f"/api/v1/campaigns/{campaign_id}/{path}").status_code == 409

    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.target_type == "campaign")
                                       .order_by(AuditEvent.id)))
        assert [e.action for e in rows] == ["campaign.scheduled", "campaign.unscheduled", "campaign.sent",
                                            "campaign.paused", "campaign.resumed", "campaign.cancelled"]
        assert {(e.api_key_id, e.user_id, e.target_id, e.ip) for e in rows} == {
            (int(key_id), None, str(campaign_id), "127.0.0.1")}
        assert all(e.actor.startswith("API key nl_") and e.actor.endswith("(test marketer)") for e in rows), \
            rows[0].actor
        assert rows[0].details["name"] == "News" and rows[0].details["send_at"].startswith(later[:16])


def test_a_refused_change_records_nothing(ctx):
    campaign = campaigns.create(**GOOD)
    with pytest.raises(ValidationError, match="list"):
        campaigns.send_now(campaign.id)  # no lists: refused before any move
    campaign_id = _ready_campaign()
    campaigns.send_now(campaign_id)
    with pytest.raises(ValidationError, match="cannot be sent again"):
        campaigns.send_now(campaign_id)
    with pytest.raises(ValidationError):
        campaigns.resume(campaign_id)  # sending, not paused
    with pytest.raises(ValidationError):
        campaigns.unschedule(campaign_id)
    assert [e[0] for e in _events() if e[2] == "campaign"] == ["campaign.sent"]
    assert db.session.get(Campaign, campaign_id).status == CampaignStatus.SENDING


def test_rescheduling_records_the_new_time(ctx):
    campaign_id = _ready_campaign()
    first = datetime.now(UTC) + timedelta(days=1)
    campaigns.schedule(campaign_id, first)
    campaigns.schedule(campaign_id, first + timedelta(hours=2))
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "campaign.scheduled")).all()
    assert [r.details["send_at"][:16] for r in rows] == [first.isoformat()[:16],
                                                        (first + timedelta(hours=2)).isoformat()[:16]]


def test_deleting_a_subscriber_through_the_api_is_by_the_key(app, api):  # noqa: F811
    created = api.post("/api/v1/subscribers", json={"email": "ana@example.com"}).get_json()
    assert api.delete(f"/api/v1/subscribers/{created['id']}").status_code == 204
    assert api.delete(f"/api/v1/subscribers/{created['id']}").status_code == 404  # nothing left: no event
    deleted = [e for e in _events(app) if e[0] == "subscriber.deleted"]
    assert len(deleted) == 1 and deleted[0][1].startswith("API key ")
    assert deleted[0][2:] == ("subscriber", str(created["id"]))
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "subscriber.deleted"))
        assert "ana@example.com" not in str(event.details)


def test_a_bulk_delete_is_one_event_with_the_count(ctx):
    ids = [subscribers.create(f"s{i}@example.com").id for i in range(3)]
    assert subscribers.bulk_delete(ids=ids[:2]) == 2
    assert subscribers.bulk_delete(filters=subscribers.make_filters(q="s2@")) == 1
    assert subscribers.bulk_delete(ids=ids) == 0  # all gone already: nothing changed, nothing recorded
    rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "subscriber.deleted")).all()
    assert [(r.target_id, r.details) for r in rows] == [
        ("", {"count": 2, "selection": "selected ids"}), ("", {"count": 1, "selection": "search"})]


def test_an_erasure_is_recorded_without_personal_data(ctx):
    subscriber = subscribers.create("ana@example.com", name="Ana")
    gdpr.erase_subscriber(subscriber.id)
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "subscriber.erased"))
    assert (event.target_id, event.details, event.ip, event.actor) == (str(subscriber.id), {}, "", "system")


def test_imports_keys_and_webhooks_are_recorded_once_each(ctx):
    news = lists.create("News", "single")
    job = imports.start(io.BytesIO(b"email\nana@example.com\n"), "people.csv", list_ids=[news.id])
    with pytest.raises(ValidationError):
        imports.start(io.BytesIO(b""), "empty.csv")
    key, _ = api_keys.create_api_key("CRM sync")
    api_keys.revoke(key.id)
    api_keys.revoke(key.id)  # already revoked: no second event
    hook = webhooks.create("https://example.com/hook", events=["subscriber.created"])
    webhooks.delete(hook.id)
    assert _events() == [
        ("import.started", "system", "import", str(job.id)),
        ("api_key.created", "system", "api_key", str(key.id)),
        ("api_key.revoked", "system", "api_key", str(key.id)),
        ("webhook.created", "system", "webhook", str(hook.id)),
        ("webhook.deleted", "system", "webhook", str(hook.id)),
    ]
    details = [e.details for e in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    assert details[0] == {"filename": "people.csv", "mode": "confirmed", "list_ids": [news.id]}
    assert details[1]["name"] == "CRM sync" and details[1]["role"] == "marketer"
    assert details[4] == {"url": "https://example.com/hook"}


def test_search_filters_and_pages(ctx):
    day = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    for i in range(7):
        event = audit.record("campaign.sent" if i % 2 else "user.login", "campaign" if i % 2 else "user", i)
        event.at, event.actor = day + timedelta(days=i), f"Person{i}@Example.com"
    db.session.commit()
    everything = audit.Filters()
    page1, cursor = audit.search(everything, limit=3)
    page2, cursor2 = audit.search(everything, before=cursor, limit=3)
    page3, cursor3 = audit.search(everything, before=cursor2, limit=3)
    assert [e.target_id for e in page1 + page2 + page3] == [str(i) for i in range(6, -1, -1)]
    assert cursor3 is None
    assert [e.target_id for e in audit.search(audit.Filters(action="campaign.sent"))[0]] == ["5", "3", "1"]
    assert [e.target_id for e in audit.search(audit.Filters(action="user.*"))[0]] == ["6", "4", "2", "0"]
    assert [e.target_id for e in audit.search(audit.Filters(actor="person3@"))[0]] == ["3"]
    assert [e.target_id for e in audit.search(audit.Filters(actor="%"))[0]] == []  # LIKE wildcards are literal
    assert [e.target_id for e in audit.search(audit.Filters(target_type="user", target_id="4"))[0]] == ["4"]
    span = audit.Filters(since=(day + timedelta(days=2)).date(), until=(day + timedelta(days=4)).date())
    assert [e.target_id for e in audit.search(span)[0]] == ["4", "3", "2"]
