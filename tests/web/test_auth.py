"""Sign-in, CSRF, throttling, and roles enforced on the server for every route."""
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.models import Role
from newsletter.services.accounts import users
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.web import csrf_token, login


def test_pages_require_sign_in(client):
    response = client.get("/admin/")
    assert response.status_code == 302 and "/login" in response.location


def test_wrong_password_is_refused_with_a_form_error(client, admin):
    response = login(client, ADMIN_EMAIL, "wrong password!")
    assert response.status_code == 200
    assert "Wrong email or password" in response.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_login_without_csrf_token_is_refused(client, admin):
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_deactivated_user_cannot_sign_in(app, client):
    with app.app_context():
        user = users.create_user("gone@example.com", "long enough password", Role.MARKETER)
        user.active = False
        from newsletter.extensions import db
        db.session.commit()
    assert "Wrong email or password" in login(client, "gone@example.com", "long enough password").get_data(as_text=True)


def test_login_is_throttled_per_ip(client, admin):
    # A different account each time: the per-account limit (5 failures) must not answer first.
    statuses = [login(client, f"nobody{i}@example.com", "wrong password!").status_code for i in range(11)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429


def test_open_redirect_after_login_is_refused(client, admin):
    page = client.get("/login?next=//evil.example/x")
    response = client.post("/login?next=//evil.example/x", data={
        "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": csrf_token(page.get_data(as_text=True))})
    assert response.location == "/admin/"


def test_logout_needs_post_with_csrf(admin_client):
    assert admin_client.get("/logout").status_code == 405
    page = admin_client.get("/admin/").get_data(as_text=True)
    admin_client.post("/logout", data={"csrf_token": csrf_token(page)})
    assert admin_client.get("/admin/").status_code == 302


def _sign_in_remembered(client) -> None:
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "remember": "y",
                                           "csrf_token": token})
    assert response.status_code == 302


def _replayed(app, name: str, value: str):
    """A fresh browser that holds only the copied cookie `name`."""
    replay = app.test_client()
    replay.set_cookie(name, value)
    return replay.get("/admin/")


def test_logout_ends_the_session_and_the_remember_cookie_server_side(app, client, admin):
    _sign_in_remembered(client)
    copied = {name: client.get_cookie(name).value for name in ("session", "remember_token")}
    for name, value in copied.items():  # each cookie alone signs a browser in while the session lasts
        assert _replayed(app, name, value).status_code == 200, name

    page = client.get("/admin/").get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": csrf_token(page)}).status_code == 302
    assert client.get_cookie("remember_token") is None
    for name, value in copied.items():
        response = _replayed(app, name, value)
        assert response.status_code == 302 and "/login" in response.location, name
    assert login(client, ADMIN_EMAIL, ADMIN_PASSWORD).status_code == 302  # signing in again works


def test_the_remember_cookie_is_httponly_samesite_and_lasts_two_weeks(client, admin):
    _sign_in_remembered(client)
    cookie = client.get_cookie("remember_token")
    assert cookie.http_only and cookie.same_site == "Lax"
    lifetime = cookie.expires - datetime.now(UTC)
    assert timedelta(days=13) < lifetime <= timedelta(days=14)


def test_the_csrf_token_from_before_sign_in_is_refused_after_it(client, admin):
    """Someone who planted a session (and its CSRF token) in a browser cannot forge requests
    once the victim signs in there: signing in starts a new session."""
    planted = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD, "csrf_token": planted})
    assert response.status_code == 302
    assert client.post("/logout", data={"csrf_token": planted}).status_code == 400
    assert client.get("/admin/").status_code == 200  # the forged sign-out did nothing
    fresh = csrf_token(client.get("/admin/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": fresh}).status_code == 302
    assert client.get("/admin/").status_code == 302


def _placeholder(rule, arg):
    """A value the route's converter accepts: an unknown id for ints, a word otherwise."""
    converter = rule._converters[arg]
    return 999999 if type(converter).__name__ in ("IntegerConverter", "NumberConverter") else "x"


def _role_routes(app):
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if hasattr(view, "required_role"):
            yield rule, view.required_role


@pytest.mark.parametrize("role", list(Role))
def test_every_role_protected_route_enforces_its_role(app, client, role):
    """Walk the URL map: each protected route answers 403 to roles below its requirement."""
    with app.app_context():
        users.create_user(f"{role.value}@example.com", "long enough password", role)
    assert login(client, f"{role.value}@example.com", "long enough password").status_code == 302
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    checked = 0
    for rule, required in _role_routes(app):
        url = rule.build({arg: _placeholder(rule, arg) for arg in rule.arguments})[1]
        if "POST" in rule.methods:  # with a valid token, so the role check is what answers
            response = client.post(url, data={"csrf_token": token})
        else:
            response = client.get(url)
        if role.allows(required):
            assert response.status_code != 403, (url, role)
        else:
            assert response.status_code == 403, (url, role, response.status_code)
        checked += 1
    assert checked >= 5


def test_every_admin_route_is_protected(app):
    """No page under /admin may forget its role decorator."""
    unprotected = [rule.rule for rule in app.url_map.iter_rules()
                   if rule.rule.startswith("/admin")
                   and not hasattr(app.view_functions[rule.endpoint], "required_role")]
    assert unprotected == []
