"""Accounts: sign-in throttled per account across IPs, and admins managing users (with the
guards that keep an admin from locking themself or everyone out)."""
import re
import time

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, Role, User
from newsletter.services import users
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.web import csrf_token, login, post_form

PASSWORD = "long enough password"
LOCKED = "Too many failed sign-ins for this account"


def _from(client, ip: str):
    client.environ_base["REMOTE_ADDR"] = ip
    return client


def _make(app, email: str, role: Role = Role.MARKETER, active: bool = True) -> int:
    with app.app_context():
        user = users.create_user(email, PASSWORD, role)
        user.active = active
        db.session.commit()
        return user.id


def _user(app, user_id: int) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def _events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))
        db.session.expunge_all()
        return rows


def _signed_in(client) -> bool:
    return client.get("/admin/").status_code == 200


# Per-account throttling -----------------------------------------------------------------------

def test_failures_from_many_ips_lock_the_account_even_for_the_right_password(app, client, admin):
    victim = _make(app, "victim@example.com")
    for i in range(5):  # five addresses, one guess each: the per-IP limit never fires
        response = login(_from(client, f"203.0.113.{i}"), "victim@example.com", "guess number %d" % i)
        assert response.status_code == 200 and "Wrong email or password" in response.get_data(as_text=True)

    response = login(_from(client, "198.51.100.7"), "victim@example.com", PASSWORD)
    assert response.status_code == 429
    assert LOCKED in response.get_data(as_text=True) and "15 minutes" in response.get_data(as_text=True)
    assert not _signed_in(client)
    assert _user(app, victim).last_login_at is None

    # Other accounts, even from an address that took part, are unaffected.
    assert login(_from(client, "203.0.113.0"), ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302
    assert [(e.details["email"], e.details["reason"]) for e in _events(app, "user.login_failed")] == \
        [("victim@example.com", "wrong password")] * 5 + [("victim@example.com", "throttled")]
    assert [e.ip for e in _events(app, "user.login_failed")][:5] == [f"203.0.113.{i}" for i in range(5)]


def test_an_unknown_address_is_locked_the_same_way(client, admin):
    """The lock applies to any address typed, so its message reveals nothing about accounts."""
    for i in range(5):
        login(_from(client, f"203.0.113.{i}"), "nobody@example.com", "guess")
    response = login(_from(client, "198.51.100.7"), "nobody@example.com", "guess")
    assert response.status_code == 429 and LOCKED in response.get_data(as_text=True)


def test_the_lock_lifts_when_the_window_passes(app, client, admin):
    _make(app, "victim@example.com")
    saved = app.config.get("LOGIN_ACCOUNT_LIMIT")
    app.config["LOGIN_ACCOUNT_LIMIT"] = "3 per 2 seconds"
    try:
        for i in range(3):
            login(_from(client, f"203.0.113.{i}"), "victim@example.com", "guess")
        assert login(client, "victim@example.com", PASSWORD).status_code == 429
        time.sleep(2.2)
        assert login(client, "victim@example.com", PASSWORD).status_code == 302
    finally:
        if saved is None:
            app.config.pop("LOGIN_ACCOUNT_LIMIT")
        else:
            app.config["LOGIN_ACCOUNT_LIMIT"] = saved


def test_a_successful_sign_in_resets_the_count_and_is_audited(app, client, admin):
    ana = _make(app, "ana@example.com")
    for i in range(4):
        login(_from(client, f"203.0.113.{i}"), "ana@example.com", "typo")
    assert login(client, "ana@example.com", PASSWORD).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/admin/").get_data(as_text=True))})
    for i in range(4):  # four more typos: not locked, the count started again
        assert login(_from(client, f"203.0.113.{i}"), "ana@example.com", "typo").status_code == 200
    assert login(client, "ana@example.com", PASSWORD).status_code == 302
    logins = _events(app, "user.login")
    assert [(e.actor, e.action, e.target_type) for e in logins] == [("ana@example.com", "user.login", "user")] * 2
    assert [e.user_id for e in logins] == [ana, ana]


# Managing users -------------------------------------------------------------------------------

def test_the_list_shows_every_user(app, admin_client):
    _make(app, "ana@example.com", Role.VIEWER)
    _make(app, "old@example.com", Role.MARKETER, active=False)
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    for text in ("ana@example.com", "old@example.com", ADMIN_EMAIL, "viewer", "deactivated", "never"):
        assert text in page


def test_admin_creates_a_user_with_a_password_who_can_then_sign_in(app, admin_client, admin):
    response = post_form(admin_client, "/admin/users/new", "/admin/users/new",
                         {"email": "Ana@Example.com", "name": "Ana", "role": "marketer", "password": PASSWORD})
    assert response.status_code == 302
    with app.app_context():
        user = users.find_by_email("ana@example.com")
        assert (user.email, user.name, user.role, user.active) == ("ana@example.com", "Ana", Role.MARKETER, True)
    created = _events(app, "user.created")  # the first: the fixture's admin, by "system"
    assert [(e.actor, e.target_id, e.details["role"]) for e in created] == [
        ("system", str(admin), "admin"), (ADMIN_EMAIL, str(user.id), "marketer")]
    other = admin_client.application.test_client()
    assert login(other, "ana@example.com", PASSWORD).status_code == 302


def test_a_generated_password_is_shown_once_and_works(app, admin_client):
    response = post_form(admin_client, "/admin/users/new", "/admin/users/new",
                         {"email": "ana@example.com", "role": "viewer", "password": ""})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="password"[^>]*>([^<]+)<', response.get_data(as_text=True)).group(1)
    assert login(admin_client.application.test_client(), "ana@example.com", password).status_code == 302


@pytest.mark.parametrize("data, error", [
    ({"email": ADMIN_EMAIL, "role": "viewer", "password": PASSWORD}, "already exists"),
    ({"email": "not an address", "role": "viewer", "password": PASSWORD}, "email"),
    ({"email": "ana@example.com", "role": "viewer", "password": "short"}, "at least 10 characters"),
])
def test_bad_new_users_are_refused_next_to_the_field(app, admin_client, admin, data, error):
    response = post_form(admin_client, "/admin/users/new", "/admin/users/new", data)
    assert response.status_code == 200
    assert re.search(r'class="field-error">[^<]*' + error, response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(select(User.id).where(User.email == "ana@example.com")) is None
    assert [e.target_id for e in _events(app, "user.created")] == [str(admin)]


def test_admin_changes_a_role(app, admin_client):
    ana = _make(app, "ana@example.com", Role.VIEWER)
    response = post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/role", {"role": "admin"})
    assert response.status_code == 302
    assert _user(app, ana).role == Role.ADMIN
    [event] = _events(app, "user.role_changed")
    assert (event.actor, event.target_id, event.details) == (
        ADMIN_EMAIL, str(ana), {"email": "ana@example.com", "before": "viewer", "after": "admin"})


def test_an_admin_cannot_demote_or_deactivate_themself(app, admin_client, admin):
    _make(app, "other-admin@example.com", Role.ADMIN)  # not the last admin: the self rule answers
    page = f"/admin/users/{admin}"
    demoted = post_form(admin_client, page, f"{page}/role", {"role": "viewer"})
    assert demoted.status_code == 200
    assert re.search(r'class="field-error">You cannot demote yourself', demoted.get_data(as_text=True))
    deactivated = post_form(admin_client, page, f"{page}/active")
    assert re.search(r'class="field-error">You cannot deactivate yourself', deactivated.get_data(as_text=True))
    me = _user(app, admin)
    assert (me.role, me.active) == (Role.ADMIN, True)
    assert _events(app, "user.role_changed") == _events(app, "user.deactivated") == []


def test_the_last_active_admin_is_kept(app, admin):
    """Only reachable without a signed-in admin (the CLI) or in a race: the service refuses."""
    with app.app_context():
        with pytest.raises(users.AccountError, match="last active admin") as error:
            users.change_role(admin, Role.MARKETER)
        assert error.value.field == "role"
        with pytest.raises(users.AccountError, match="last active admin"):
            users.set_active(admin, False)
    second = _make(app, "second@example.com", Role.ADMIN)
    with app.app_context():
        users.change_role(admin, Role.MARKETER, by_user_id=second)  # two admins: one may go
        with pytest.raises(users.AccountError, match="last active admin"):
            users.set_active(second, False)
        # An inactive admin does not count as the one that keeps the platform manageable.
        users.change_role(admin, Role.ADMIN)
        users.set_active(admin, False, by_user_id=second)
        with pytest.raises(users.AccountError, match="last active admin"):
            users.change_role(second, Role.VIEWER)


def test_deactivating_ends_the_users_session_and_reactivating_lets_them_back(app, admin_client):
    ana = _make(app, "ana@example.com")
    ana_client = admin_client.application.test_client()
    assert login(ana_client, "ana@example.com", PASSWORD).status_code == 302
    assert _signed_in(ana_client)

    assert post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/active").status_code == 302
    assert _user(app, ana).active is False
    response = ana_client.get("/admin/")
    assert response.status_code == 302 and "/login" in response.location
    assert "Wrong email or password" in login(ana_client, "ana@example.com", PASSWORD).get_data(as_text=True)

    assert post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/active").status_code == 302
    assert login(admin_client.application.test_client(), "ana@example.com", PASSWORD).status_code == 302
    assert [e.action for e in _events(app, "user.deactivated") + _events(app, "user.reactivated")] == \
        ["user.deactivated", "user.reactivated"]


def test_admin_resets_a_password(app, admin_client):
    ana = _make(app, "ana@example.com")
    response = post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/password", {"password": ""})
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="password"[^>]*>([^<]+)<', response.get_data(as_text=True)).group(1)
    other = admin_client.application.test_client()
    assert "Wrong email or password" in login(other, "ana@example.com", PASSWORD).get_data(as_text=True)
    assert login(other, "ana@example.com", password).status_code == 302

    short = post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/password", {"password": "short"})
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert [(e.actor, e.target_id) for e in _events(app, "user.password_reset")] == [(ADMIN_EMAIL, str(ana))]


def test_unknown_users_are_404(admin_client):
    assert admin_client.get("/admin/users/999999").status_code == 404
    assert admin_client.get("/admin/users/abc").status_code == 404


def test_only_admins_manage_users(app, client):
    _make(app, "m@example.com", Role.MARKETER)
    login(client, "m@example.com", PASSWORD)
    assert client.get("/admin/users/").status_code == 403
    assert client.get("/admin/audit/").status_code == 403


def test_a_reactivated_user_does_not_get_old_sessions_back(app, admin_client):
    """Deactivation ends sessions for good: the cookie's session version no longer matches."""
    from newsletter.models import Role
    from newsletter.services import users as users_service
    from tests.support.web import login

    with app.app_context():
        user = users_service.create_user("kept@example.com", "long enough password", Role.MARKETER)
        user_id = user.id
    other = app.test_client()
    assert login(other, "kept@example.com", "long enough password").status_code == 302
    assert other.get("/admin/campaigns/").status_code == 200
    with app.app_context():
        users_service.set_active(user_id, False)
        users_service.set_active(user_id, True)
    assert other.get("/admin/campaigns/").status_code in (302, 401)  # signed out
    assert login(other, "kept@example.com", "long enough password").status_code == 302
    assert other.get("/admin/campaigns/").status_code == 200
