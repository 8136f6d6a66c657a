"""Settings → Sending servers: add with precise form errors, edit, test connection against a real SMTP
server, enable/disable, live state, admin only, CSRF; the campaign's pool in the API and the editor."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models import AuditEvent, Campaign, Role, SendingServer
from newsletter.sending import pools
from newsletter.services.accounts import api_keys, users
from newsletter.services.delivery import servers
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.support.net import free_port
from tests.support.smtp import RecordingSmtpServer
from tests.support.web import csrf_token, login, post_form
from tests.web.test_browser import CHROMIUM, VIEWPORTS, assert_fits

NEW = "/admin/settings/servers/new"
FORM = {"name": "relay-2", "pool": "bulk", "host": "127.0.0.1", "port": "2525", "tls": "none",
        "username": "", "password": "", "per_second": "20", "per_hour": "0", "per_day": "50000", "enabled": "y"}


@pytest.fixture
def relay(tmp_path):
    server = RecordingSmtpServer(str(tmp_path / "relay"), login=("relay-user", "relay pass")).start()
    yield server
    server.stop()


def one(app) -> SendingServer:
    with app.app_context():
        return db.session.scalar(select(SendingServer))


def test_the_empty_page_lists_the_settings_server_and_says_what_to_do(admin_client):
    page = admin_client.get("/admin/settings/servers/").get_data(as_text=True)
    assert "the Settings page's server" in page and "Add your first server" in page
    assert 'badge-up' in page


@pytest.mark.parametrize(("field", "value", "error"), [
    ("name", "Bad Name!", "1 to 64 of a-z"),
    ("name", "default", "the Settings page"),
    ("port", "70000", "between 1 and 65535"),
    ("port", "smtp", "Enter a whole number"),
    ("host", "", "Enter a host name"),
    ("per_second", "-1", "between 0 and"),
    ("per_hour", "1.5", "Enter a whole number"),
    ("tls", "ssl3", "Choose one of"),
])
def test_bad_values_are_refused_next_to_their_field_and_nothing_is_saved(app, admin_client, field, value, error):
    response = post_form(admin_client, NEW, NEW, {**FORM, field: value})
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'class="field-error"' in page and error in page, page[-3000:]
    assert f'id="{field}-error"' in page
    assert one(app) is None


def test_add_edit_test_connection_and_disable(app, admin_client, relay):
    response = post_form(admin_client, NEW, NEW, {**FORM, "port": str(relay.port), "username": "relay-user",
                                                  "password": "relay pass"})
    assert response.status_code == 302
    row = one(app)
    assert (row.name, row.pool, row.per_second, row.per_day, row.enabled) == ("relay-2", "bulk", 20, 50000, True)
    assert row.password_encrypted and "relay pass" not in row.password_encrypted
    duplicate = post_form(admin_client, NEW, NEW, {**FORM, "port": str(relay.port)})
    assert duplicate.status_code == 400 and "already exists" in duplicate.get_data(as_text=True)

    index = admin_client.get("/admin/settings/servers/").get_data(as_text=True)
    assert "relay-2" in index and "bulk" in index and "20/s" in index
    token = csrf_token(index)
    tested = admin_client.post(f"/admin/settings/servers/{row.id}/test", data={"csrf_token": token},
                               follow_redirects=True).get_data(as_text=True)
    assert "relay-2: connected and logged in." in tested and relay.logins == ["relay-user"]

    edit = f"/admin/settings/servers/{row.id}/edit"
    page = admin_client.get(edit).get_data(as_text=True)
    assert "relay pass" not in page and "(unchanged)" in page
    response = post_form(admin_client, edit, edit, {**FORM, "port": str(relay.port), "username": "relay-user",
                                                    "password": "wrong pass"})
    assert response.status_code == 302
    failed = admin_client.post(f"/admin/settings/servers/{row.id}/test", data={"csrf_token": token},
                               follow_redirects=True).get_data(as_text=True)
    assert "did not accept us: 535" in failed

    assert admin_client.post(f"/admin/settings/servers/{row.id}/disable", data={}).status_code == 400
    assert one(app).enabled is True  # no CSRF token: nothing changed
    admin_client.post(f"/admin/settings/servers/{row.id}/disable", data={"csrf_token": token})
    assert one(app).enabled is False
    assert "badge-disabled" in admin_client.get("/admin/settings/servers/").get_data(as_text=True)


def test_the_page_shows_a_down_server_and_a_throttled_one(app, admin_client):
    with app.app_context():
        down = servers.save({**FORM, "name": "gone", "port": str(free_port())})
        slow = servers.save({**FORM, "name": "slowed"})
        shared = pools.state(app.config["REDIS_URL"])
        shared.mark_down(pools.Server(down.name, down.pool, servers.builtin().smtp), "Connection refused")
        shared.throttled(pools.Server(slow.name, slow.pool, servers.builtin().smtp, per_second=20), 100)
    page = admin_client.get("/admin/settings/servers/").get_data(as_text=True)
    assert "badge-down" in page and "Connection refused" in page
    # 20/s halved, coming back linearly over THROTTLE_SECONDS (120 s): 10/s when the page is read
    # within 6 s, whole numbers from 10/s up (a busy machine may take a few seconds to render it)
    assert "badge-throttled" in page
    rates = [float(r) for r in re.findall(r"([\d.]+)/s now", page)]
    assert any(10 <= r <= 12 for r in rates), rates


def test_a_marketer_gets_403_everywhere(app, client, admin):
    with app.app_context():
        server_id = servers.save(dict(FORM)).id
        users.create_user("m@example.com", "long enough password", Role.MARKETER)
    assert login(client, "m@example.com", "long enough password").status_code == 302
    for url in ("/admin/settings/servers/", NEW, f"/admin/settings/servers/{server_id}/edit"):
        assert client.get(url).status_code == 403, url
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    for action in ("test", "disable", "enable", "delete"):
        assert client.post(f"/admin/settings/servers/{server_id}/{action}",
                           data={"csrf_token": token}).status_code == 403, action


def test_a_campaign_chooses_its_pool_in_the_api_and_an_unknown_pool_is_a_422(app, client, admin):
    with app.app_context():
        servers.save(dict(FORM))
        key = api_keys.create_api_key("pools", Role.MARKETER)[1]
    headers = {"Authorization": f"Bearer {key}"}
    body = {"name": "N", "subject": "S", "from_email": "news@example.com", "html": "<p>Hi</p>", "list_ids": []}
    created = client.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 201 and created.get_json()["pool"] == "default"
    refused = client.post("/api/v1/campaigns", json={**body, "pool": "nowhere"}, headers=headers)
    assert refused.status_code == 422 and "pool" in str(refused.get_json()) and "nowhere" in str(refused.get_json())
    campaign_id = created.get_json()["id"]
    patched = client.patch(f"/api/v1/campaigns/{campaign_id}", json={"pool": "bulk"}, headers=headers)
    assert patched.status_code == 200 and patched.get_json()["pool"] == "bulk"
    with app.app_context():
        assert db.session.get(Campaign, campaign_id).pool == "bulk"


def test_the_campaign_editor_offers_the_pools(app, admin_client):
    with app.app_context():
        servers.save(dict(FORM))
    page = admin_client.get("/admin/campaigns/new").get_data(as_text=True)
    assert '<option value="bulk">bulk</option>' in page and '<option selected value="default">' in page


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("device", VIEWPORTS)
def test_the_sending_server_pages_in_a_browser(app, browser, live_server, admin, relay, shots, device):
    page = browser.new_page(viewport=VIEWPORTS[device])
    page.goto(live_server + "/login")
    page.fill("#email", ADMIN_EMAIL)
    page.fill("#password", ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/admin/")  # signed in
    page.goto(live_server + NEW)
    page.fill("#name", f"relay-{device}")
    page.fill("#pool", "bulk")
    page.fill("#host", "127.0.0.1")
    page.fill("#port", "99999")
    page.click("text=Add the server")
    assert "between 1 and 65535" in page.locator("#port-error").inner_text()
    assert_fits(page)
    page.screenshot(path=shots / f"sending_server_form_{device}.png", full_page=True)
    page.fill("#port", str(relay.port))
    page.select_option("#tls", "none")
    page.fill("#username", "relay-user")
    page.fill("#password", "relay pass")
    page.click("text=Add the server")
    page.wait_for_url(live_server + "/admin/settings/servers/")
    row = page.locator(f"tr:has-text('relay-{device}')")
    row.locator("text=Test connection").click()
    assert f"relay-{device}: connected and logged in." in page.locator(".flash").inner_text()
    assert page.locator(f"tr:has-text('relay-{device}') .badge-up").count() == 1
    assert_fits(page)
    page.screenshot(path=shots / f"sending_servers_{device}.png", full_page=True)
    page.close()


def test_a_server_is_deleted_only_once_disabled_and_the_deletion_is_audited(app, admin_client):
    with app.app_context():
        server_id = servers.save(dict(FORM)).id
    url = f"/admin/settings/servers/{server_id}"
    token = csrf_token(admin_client.get("/admin/settings/servers/").get_data(as_text=True))
    assert 'action="' + url + '/delete"' not in admin_client.get("/admin/settings/servers/").get_data(as_text=True)
    refused = admin_client.post(f"{url}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Disable relay-2 first" in refused.get_data(as_text=True) and one(app) is not None
    assert admin_client.post(f"{url}/delete", data={}).status_code == 400  # no CSRF token
    admin_client.post(f"{url}/disable", data={"csrf_token": token})
    page = admin_client.get("/admin/settings/servers/").get_data(as_text=True)
    assert 'action="' + url + '/delete"' in page and "Delete the sending server relay-2?" in page
    deleted = admin_client.post(f"{url}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "Sending server relay-2 deleted." in deleted.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(SendingServer)).all() == []
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "sending_server.deleted")).one()
        assert event.details["name"] == "relay-2"
    assert admin_client.post(f"{url}/delete", data={"csrf_token": token}).status_code == 404
