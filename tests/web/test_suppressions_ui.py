"""The suppression list page: marketers add suppressions, only admins lift them, and every
lift is in the audit log."""
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, Role, SuppressionReason
from newsletter.services.accounts import users
from newsletter.services.audience import suppressions
from tests.conftest import ADMIN_EMAIL
from tests.support.web import login, post_form

PAGE = "/admin/subscribers/suppressions"
LIFT = "/admin/subscribers/suppressions/lift"


def _suppress(app, email: str) -> None:
    with app.app_context():
        suppressions.suppress(email, SuppressionReason.COMPLAINT, "reported as spam")
        db.session.commit()


def _suppressed(app, email: str) -> bool:
    with app.app_context():
        return suppressions.is_suppressed(email)


def _lifts(app) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == "suppression.lifted")))
        db.session.expunge_all()
        return rows


def test_a_marketer_cannot_lift_a_suppression(app, client):
    _suppress(app, "gone@example.com")
    with app.app_context():
        users.create_user("m@example.com", "long enough password", Role.MARKETER)
    assert login(client, "m@example.com", "long enough password").status_code == 302
    page = client.get(PAGE).get_data(as_text=True)
    assert "gone@example.com" in page and LIFT not in page and "Only an admin can lift" in page
    assert post_form(client, PAGE, PAGE, {"email": "new@example.com"}).status_code == 302  # adding is theirs
    response = post_form(client, PAGE, LIFT, {"email": "gone@example.com"})
    assert response.status_code == 403
    assert _suppressed(app, "gone@example.com") and _lifts(app) == []


def test_an_admins_lift_is_in_the_audit_log(app, admin_client, admin):
    _suppress(app, "gone@example.com")
    assert LIFT in admin_client.get(PAGE).get_data(as_text=True)
    response = post_form(admin_client, PAGE, LIFT, {"email": "gone@example.com"})
    assert response.status_code == 302
    assert not _suppressed(app, "gone@example.com")
    [event] = _lifts(app)
    assert (event.actor, event.user_id, event.target_type) == (ADMIN_EMAIL, admin, "suppression")
    assert (event.details["email"], event.details["reason"], event.details["note"]) == (
        "gone@example.com", "complaint", "reported as spam")
    log = admin_client.get("/admin/audit/?action=suppression.lifted").get_data(as_text=True)
    assert "suppression.lifted" in log and "gone@example.com" in log

    # Lifting what is not suppressed records nothing.
    post_form(admin_client, PAGE, LIFT, {"email": "gone@example.com"})
    assert len(_lifts(app)) == 1
