"""Accounts: sign-in throttled per account and client without locking the owner out, and admins managing users (with the
guards that keep an admin from locking themself or everyone out)."""
import re
import time

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, Role, User
from newsletter.services.accounts import users
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


# Sign-in throttling (services/accounts/login_guard.py) ----------------------------------------

@pytest.fixture(autouse=True)
def _fresh_counters(client):
    """The `client` fixture resets the sign-in counters; every test here starts from none."""


def _browser(app, ip: str):
    return _from(app.test_client(), ip)


def _sign_out(client) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/admin/").get_data(as_text=True))})


def test_an_attacker_is_slowed_while_the_owner_signs_in_from_elsewhere(app, admin):
    victim = _make(app, "victim@example.com")
    attacker = _browser(app, "127.0.0.2")
    for i in range(3):
        response = login(attacker, "victim@example.com", f"guess number {i}")
        assert response.status_code == 200 and "Wrong email or password" in response.get_data(as_text=True)
    for password in ("guess number 3", PASSWORD):  # now even the right one is not tried
        response = login(attacker, "victim@example.com", password)
        assert response.status_code == 429
        assert f"{LOCKED} from here. Try again in" in response.get_data(as_text=True)
        assert 0 < int(response.headers["Retry-After"]) <= 60
    assert not _signed_in(attacker)

    owner = _browser(app, "127.0.0.3")  # another address, never signed in there before
    assert login(owner, "victim@example.com", PASSWORD).status_code == 302 and _signed_in(owner)
    assert _user(app, victim).last_login_at is not None
    reasons = [e.details["reason"] for e in _events(app, "user.login_failed")]
    assert reasons == ["wrong password"] * 3 + ["throttled"] * 2
    assert {e.ip for e in _events(app, "user.login_failed")} == {"127.0.0.2"}


def test_the_owners_known_device_gets_in_while_unknown_devices_are_locked_out(app, admin):
    _make(app, "victim@example.com")
    owner = _browser(app, "127.0.0.3")
    assert login(owner, "victim@example.com", PASSWORD).status_code == 302  # sets the known-device cookie
    _sign_out(owner)

    for i in range(20):  # an attacker rotating addresses: one guess each, no address is ever slowed
        response = login(_browser(app, f"127.0.1.{i}"), "victim@example.com", f"guess number {i}")
        assert response.status_code == 200, i
    locked = login(_browser(app, "127.0.2.1"), "victim@example.com", PASSWORD)
    assert locked.status_code == 429
    text = locked.get_data(as_text=True)
    assert f"{LOCKED} from devices it was not used on" in text and "minutes" in text

    new_device = _browser(app, "127.0.0.3")  # the owner's address, but a browser without the cookie
    assert login(new_device, "victim@example.com", PASSWORD).status_code == 429
    forged = _browser(app, "127.0.0.4")
    forged.set_cookie("known_device", owner.get_cookie("known_device", path="/login").value + "x", path="/login")
    assert login(forged, "victim@example.com", PASSWORD).status_code == 429
    other_account = _browser(app, "127.0.0.5")  # a known device, but of another account
    assert login(other_account, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302
    _sign_out(other_account)
    assert login(other_account, "victim@example.com", PASSWORD).status_code == 429

    assert login(owner, "victim@example.com", PASSWORD).status_code == 302 and _signed_in(owner)


def test_a_known_device_that_fails_is_slowed_too(app, admin):
    _make(app, "victim@example.com")
    device = _browser(app, "127.0.0.3")
    assert login(device, "victim@example.com", PASSWORD).status_code == 302
    _sign_out(device)
    assert [login(device, "victim@example.com", "typo typo").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert login(device, "victim@example.com", PASSWORD).status_code == 429
    # The same address without that device's cookie counts on its own.
    assert login(_browser(app, "127.0.0.3"), "victim@example.com", PASSWORD).status_code == 302


def test_an_unknown_address_is_slowed_the_same_way(app, admin):
    """The limits apply to any address typed, so the answers reveal nothing about accounts."""
    _make(app, "victim@example.com")
    answers = {}
    for email in ("victim@example.com", "nobody@example.com"):
        browser = _browser(app, "127.0.0.2")
        statuses = [login(browser, email, "guess guess").status_code for _ in range(4)]
        error = re.search(r'class="field-error">([^<]+)<', login(browser, email, "guess").get_data(as_text=True))
        answers[email] = statuses, re.sub(r"\d+ seconds", "N seconds", error.group(1))
    assert answers["victim@example.com"][0] == [200, 200, 200, 429]
    assert answers["victim@example.com"] == answers["nobody@example.com"]


def test_the_account_lock_lifts_when_the_window_passes(app, admin):
    _make(app, "victim@example.com")
    saved = app.config.get("LOGIN_ACCOUNT_LIMIT")
    # The window opens at the first failure and must still be open at the fourth try: room for two
    # more password checks (scrypt, ~0.8 s each at load 9 on two cores, where 2 s was too short).
    app.config["LOGIN_ACCOUNT_LIMIT"] = "3 per 6 seconds"
    try:
        for i in range(3):
            login(_browser(app, f"127.0.1.{i}"), "victim@example.com", "guess")
        assert login(_browser(app, "127.0.0.3"), "victim@example.com", PASSWORD).status_code == 429
        time.sleep(6.2)  # the point: the 6-second window must pass (polling would count as attempts)
        assert login(_browser(app, "127.0.0.3"), "victim@example.com", PASSWORD).status_code == 302
    finally:
        if saved is None:
            app.config.pop("LOGIN_ACCOUNT_LIMIT")
        else:
            app.config["LOGIN_ACCOUNT_LIMIT"] = saved


def test_a_successful_sign_in_resets_the_clients_count_and_is_audited(app, admin):
    ana = _make(app, "ana@example.com")
    browser = _browser(app, "127.0.0.2")
    for _ in range(2):
        login(browser, "ana@example.com", "typo typo")
    assert login(browser, "ana@example.com", PASSWORD).status_code == 302
    _sign_out(browser)
    browser.delete_cookie("known_device", path="/login")  # counted by address again
    for _ in range(3):  # three more typos: not slowed, the count started again
        assert login(browser, "ana@example.com", "typo typo").status_code == 200
    assert login(browser, "ana@example.com", "typo typo").status_code == 429
    logins = _events(app, "user.login")
    assert [(e.actor, e.action, e.target_type, e.user_id) for e in logins] == [
        ("ana@example.com", "user.login", "user", ana)]


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


@pytest.mark.parametrize("password, error", [
    ("aaaaaaaaaa", "repeated or sequential"),
    ("1234567890", "repeated or sequential"),
    ("qwertyuiop", "repeated or sequential"),
    ("Password123!", "most common passwords"),
    ("iloveyou2024", "most common passwords"),
    ("ana.lima-rocks", "email address or name"),
])
def test_weak_passwords_are_refused_when_creating_and_resetting(app, admin_client, admin, password, error):
    response = post_form(admin_client, "/admin/users/new", "/admin/users/new",
                         {"email": "ana.lima@example.com", "role": "viewer", "password": password})
    assert re.search(r'class="field-error">[^<]*' + error, response.get_data(as_text=True))
    with app.app_context():
        assert users.find_by_email("ana.lima@example.com") is None

    ana = _make(app, "ana.lima@example.com")
    response = post_form(admin_client, f"/admin/users/{ana}", f"/admin/users/{ana}/password", {"password": password})
    assert response.status_code == 200 and error in response.get_data(as_text=True)
    assert login(app.test_client(), "ana.lima@example.com", PASSWORD).status_code == 302  # unchanged
    assert _events(app, "user.password_reset") == []


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
    from newsletter.services.accounts import users as users_service
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


def test_a_user_name_with_control_characters_is_refused(app, admin_client):
    response = post_form(admin_client, "/admin/users/new", "/admin/users/new",
                         {"email": "ctl@example.com", "name": "Bob\x1b[31m red", "role": "viewer"})
    assert re.search(r'class="field-error">[^<]*Control characters are not allowed',
                     response.get_data(as_text=True))
    with app.app_context():
        assert users.find_by_email("ctl@example.com") is None
