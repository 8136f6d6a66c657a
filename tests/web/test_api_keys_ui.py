"""The API-key admin pages: the list, create (secret shown once), revoke; admin only."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from newsletter.extensions import db
from newsletter.models import ApiKey, Role
from newsletter.services.accounts import api_keys, users
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.net import wait_for
from tests.support.web import csrf_token, login, post_form
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

INDEX, NEW = "/admin/api-keys/", "/admin/api-keys/new"
KEY_RE = re.compile(r'id="api-key"[^>]*>(nl_[A-Za-z0-9_-]+)<')
# "Last used: never" in the table (the page's scripts' words, rendered in it, say "never" elsewhere).
NEVER_USED = re.compile(r">\s*never\s*<")


def _create(client, name="CRM sync", role="viewer"):
    return post_form(client, NEW, NEW, {"name": name, "role": role})


def test_empty_list_says_what_to_do_and_links_the_docs(admin_client):
    html = admin_client.get(INDEX).get_data(as_text=True)
    assert "No API keys yet" in html and NEW in html and "/api/v1/docs" in html


def test_created_key_is_shown_once_works_and_is_stored_hashed(app, admin_client, client):
    response = _create(admin_client, "CRM sync", "viewer")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    raw = KEY_RE.search(html).group(1)
    assert "shown only once" in html and 'id="copy-key"' in html

    with app.app_context():
        key = db.session.query(ApiKey).one()
        assert key.name == "CRM sync" and key.role is Role.VIEWER and key.last_used_at is None
        assert raw not in (key.key_hash, key.prefix)
    listing = admin_client.get(INDEX).get_data(as_text=True)
    assert "CRM sync" in listing and key.prefix in listing and raw not in listing and NEVER_USED.search(listing)

    # The key works with its role: reads yes, writes no.
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/lists", headers=headers).status_code == 200
    assert client.post("/api/v1/lists", json={"name": "x", "opt_in": "single"}, headers=headers).status_code == 403
    assert not NEVER_USED.search(admin_client.get(INDEX).get_data(as_text=True))  # last used: now


def test_create_form_errors_next_to_the_field(admin_client):
    html = _create(admin_client, name="   ").get_data(as_text=True)
    assert 'class="field-error"' in html and "Name the key" in html
    bad_role = _create(admin_client, name="x", role="owner").get_data(as_text=True)
    assert "Not a valid choice" in bad_role
    with admin_client.application.app_context():
        assert api_keys.list_keys() == []


def test_revoke_asks_first_then_the_key_gets_401(app, admin_client, client):
    with app.app_context():
        key, raw = api_keys.create_api_key("old script", Role.MARKETER)
        url, prefix = f"/admin/api-keys/{key.id}/revoke", key.prefix
    page = admin_client.get(url).get_data(as_text=True)
    assert "Revoke “old script”?" in page and prefix in page
    # Without the form's CSRF token nothing happens.
    assert admin_client.post(url).status_code == 400
    assert client.get("/api/v1/lists", headers={"Authorization": f"Bearer {raw}"}).status_code == 200

    response = post_form(admin_client, url, url)
    assert response.status_code == 302 and response.location.endswith(INDEX)
    listing = admin_client.get(INDEX).get_data(as_text=True)
    assert "revoked" in listing and "Requests with it now get 401" in listing
    assert client.get("/api/v1/lists", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert admin_client.get(url).status_code == 302  # nothing left to revoke
    assert admin_client.get("/admin/api-keys/999999/revoke").status_code == 404


def test_only_admins_see_the_pages(app, client):
    with app.app_context():
        users.create_user("m@example.com", "long enough password", Role.MARKETER)
    login(client, "m@example.com", "long enough password")
    assert client.get(INDEX).status_code == 403
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    assert client.post(NEW, data={"name": "sneaky", "role": "admin", "csrf_token": token}).status_code == 403
    assert "/admin/api-keys/" not in client.get("/admin/").get_data(as_text=True)


def test_last_used_is_written_at_most_once_a_minute(app):
    with app.app_context():
        _, raw = api_keys.create_api_key("busy", Role.VIEWER)
        first = api_keys.authenticate(raw).last_used_at
        assert api_keys.authenticate(raw).last_used_at == first  # within the minute: no write
        key = db.session.query(ApiKey).one()
        key.last_used_at = first - timedelta(seconds=61)
        db.session.commit()
        assert api_keys.authenticate(raw).last_used_at >= first  # a minute old: written again


# In a real browser ---------------------------------------------------------------------------

def _sign_in(page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/admin/")


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
def test_api_docs_load_from_our_own_static_files(browser, live_server, admin, shots):
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    _sign_in(page, live_server)
    elsewhere = []
    page.on("request", lambda request: None if request.url.startswith(live_server) or request.url.startswith("data:")
            else elsewhere.append(request.url))
    page.goto(live_server + "/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/lists" in " ".join(paths) and len(paths) >= 5
    page.screenshot(path=shots / "api_docs.png", full_page=False)
    assert elsewhere == []


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_create_copy_and_revoke_a_key_in_a_browser(app, browser, live_server, admin, shots, device):
    page = browser.new_page(viewport=VIEWPORTS[device])
    _sign_in(page, live_server)
    if device == "phone":
        page.click(".menu-toggle")  # on a phone the links fold behind the menu button
    page.click("nav >> summary:has-text(\"Admin\")")  # the admin pages sit in a dropdown
    page.click("nav >> text=API keys")
    page.wait_for_url(live_server + INDEX)
    assert_fits(page)
    page.screenshot(path=shots / f"api_keys_empty_{device}.png", full_page=True)

    page.click("text=Create your first API key")
    page.fill("#name", f"Website signup ({device})")
    page.check("input[value=viewer]")
    assert_fits(page)
    page.screenshot(path=shots / f"api_keys_new_{device}.png", full_page=True)
    page.click("main button[type=submit]")
    raw = page.locator("#api-key").inner_text()
    assert raw.startswith("nl_")
    page.click("#copy-key")  # plain http: no clipboard, so the key gets selected instead
    # Polled from here: wait_for_function evaluates its string in the page, which the CSP forbids.
    wait_for(lambda: page.evaluate("window.getSelection().toString().length > 0 || "
                                   "document.getElementById('copy-key').textContent === 'Copied'"),
             10, 0.1, "the key selected or copied")
    assert_fits(page)
    page.screenshot(path=shots / f"api_keys_created_{device}.png", full_page=True)

    page.click("text=Done")
    assert raw not in page.content()
    page.click("text=Revoke…")
    # The click starts a navigation: measured before the new page has loaded, the width is the
    # half-torn-down old one's (seen as "473px wider" and as a null documentElement under load).
    page.wait_for_url(re.compile(r".*/revoke$"))
    page.wait_for_load_state("load")
    assert_fits(page)
    page.screenshot(path=shots / f"api_keys_revoke_{device}.png", full_page=True)
    page.click("button.danger")
    assert "revoked" in page.locator(".flash").inner_text()
    with app.app_context():  # a fuller list to look at: a key in use and a spare one
        api_keys.authenticate(api_keys.create_api_key("Nightly CRM sync", Role.MARKETER)[1])
        api_keys.create_api_key("Ops dashboard", Role.ADMIN)
    page.reload()
    assert_fits(page)
    page.screenshot(path=shots / f"api_keys_list_{device}.png", full_page=True)
