"""The audit log page: web actions are by the signed-in user (with their IP), and the filters
and pages show exactly the matching events, newest first."""
import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent
from newsletter.services import audit
from newsletter.services.audience import subscribers
from tests.conftest import ADMIN_EMAIL
from tests.support.web import post_form

ROW = re.compile(r'<code class="action[^"]*"[^>]*>([^<]+)</code>\s*(?:<a href="[^"]*"[^>]*>([^<]*)</a>)?')


def _rows(client, url: str) -> list[tuple[str, str]]:
    response = client.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [(action, target.strip()) for action, target in ROW.findall(response.get_data(as_text=True))]


def _older(client, url: str) -> str | None:
    match = re.search(r'href="([^"]+)" rel="next"', client.get(url).get_data(as_text=True))
    return match.group(1).replace("&amp;", "&") if match else None


def test_web_actions_are_by_the_signed_in_user_from_their_address(app, admin_client, admin):
    admin_client.environ_base["REMOTE_ADDR"] = "192.0.2.44"
    with app.app_context():
        subscriber_id = subscribers.create("ana@example.com").id
    page = f"/admin/subscribers/{subscriber_id}"
    assert post_form(admin_client, page, f"{page}/delete").status_code == 302
    assert post_form(admin_client, "/admin/api-keys/new", "/admin/api-keys/new",
                     {"name": "CRM", "role": "viewer"}).status_code == 200
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.action.in_(
            ["subscriber.deleted", "api_key.created"])).order_by(AuditEvent.id)).all()
        assert [(e.action, e.actor, e.user_id, e.api_key_id, e.ip) for e in rows] == [
            ("subscriber.deleted", ADMIN_EMAIL, admin, None, "192.0.2.44"),
            ("api_key.created", ADMIN_EMAIL, admin, None, "192.0.2.44")]
    # The sign-in itself came first (from the test client's default address).
    assert _rows(admin_client, "/admin/audit/?action=user.login") == [("user.login", f"user #{admin}")]


def _seed(app, n: int = 120) -> datetime:
    """n events, one a day from `start`: campaigns by ana, users by bob, alternating."""
    start = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    with app.app_context():
        for i in range(n):
            if i % 2:
                event = audit.record("campaign.sent", "campaign", i, name=f"Issue {i}")
            else:
                event = audit.record("user.role_changed", "user", i, before="viewer", after="marketer")
            event.actor = "ana@example.com" if i % 2 else "Bob@Example.com"
            event.at = start + timedelta(days=i)
        db.session.commit()
    return start


def test_pages_walk_every_event_once_newest_first(app, admin_client):
    _seed(app)
    url, seen, pages = "/admin/audit/?action=campaign.*", [], 0
    while url:
        seen += _rows(admin_client, url)
        url, pages = _older(admin_client, url), pages + 1
    assert pages == 2
    assert seen == [("campaign.sent", f"campaign #{i}") for i in range(119, 0, -2)]


def test_filters_show_exactly_the_matching_events(app, admin_client):
    start = _seed(app, 20)
    get = lambda query: _rows(admin_client, "/admin/audit/?" + query)  # noqa: E731
    assert get("action=user.role_changed&actor=BOB@") == [("user.role_changed", f"user #{i}")
                                                          for i in range(18, -1, -2)]
    assert get("actor=ana") == [("campaign.sent", f"campaign #{i}") for i in range(19, 0, -2)]
    assert get("target_type=campaign&target_id=7") == [("campaign.sent", "campaign #7")]
    since, until = (start + timedelta(days=3)).date(), (start + timedelta(days=5)).date()
    assert get(f"since={since}&until={until}") == [("campaign.sent", "campaign #5"), ("user.role_changed", "user #4"),
                                                   ("campaign.sent", "campaign #3")]
    assert get(f"since={since}&until={until}&actor=bob") == [("user.role_changed", "user #4")]
    nothing = admin_client.get("/admin/audit/?action=webhook.deleted").get_data(as_text=True)
    assert "No event matches these filters" in nothing


def test_details_are_shown_and_a_bad_date_is_a_form_error(app, admin_client):
    _seed(app, 2)
    page = admin_client.get("/admin/audit/").get_data(as_text=True)
    assert "name: Issue 1" in page and "after: marketer" in page
    bad = admin_client.get("/admin/audit/?since=yesterday")
    assert bad.status_code == 200 and 'class="field-error"' in bad.get_data(as_text=True)
    assert _rows(admin_client, "/admin/audit/?since=yesterday") == []
