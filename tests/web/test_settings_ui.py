"""The Settings page: sources shown per field, errors next to fields, the password never shown."""
from __future__ import annotations

import os
import re
import shutil
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models.setting import Setting
from newsletter.services import settings
from tests.support.web import csrf_token, login, post_form

PAGE = "/admin/settings/"


@pytest.fixture(autouse=True)
def defaults(app):
    yield
    with app.app_context():
        db.session.rollback()
        settings.save(dict.fromkeys(settings.NAMES), None)


def _form(client, **changes) -> dict:
    """The page's form as a browser would post it, with `changes` typed in."""
    html = client.get(PAGE).get_data(as_text=True)
    values = {k: unescape(v) for k, v in re.findall(r'<input[^>]*name="([A-Z_]+)"[^>]*value="([^"]*)"', html)}
    values["MAIL_TLS"] = re.search(r'<option selected value="(\w+)"', html).group(1)
    return {**values, "MAIL_PASSWORD": "", **changes, "csrf_token": csrf_token(html)}


def _field_error(html: str, name: str) -> str:
    match = re.search(rf'id="{name}-error" class="field-error">([^<]*)<', html)
    return match.group(1) if match else ""


def test_page_shows_environment_values_and_where_they_come_from(app, admin_client):
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "<h1>Settings</h1>" in html
    for label in ("SMTP server", "Sender", "Sending", "Send test email"):
        assert label in html
    assert f'value="{app.config["MAIL_PORT"]}"' in html
    assert html.count(">environment</span>") == len(settings.NAMES) and ">database</span>" not in html


def test_saving_overrides_the_environment_and_reset_puts_it_back(app, admin_client, admin):
    response = admin_client.post(PAGE, data=_form(admin_client, MAIL_PORT="2525", SEND_RATE="300"))
    assert response.status_code == 302
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "Saved: Port, Campaign rate (messages/s)" in html and html.count(">database</span>") == 2
    with app.app_context():
        rows = {s.key: s for s in db.session.scalars(select(Setting))}
        assert set(rows) == {"MAIL_PORT", "SEND_RATE"} and rows["MAIL_PORT"].updated_by_id == admin
        assert settings.get("MAIL_PORT") == 2525

    response = post_form(admin_client, PAGE, "/admin/settings/reset", {"name": "MAIL_PORT"})
    assert response.status_code == 302
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "Back to the environment&#39;s value: Port" in html and html.count(">database</span>") == 1
    post_form(admin_client, PAGE, "/admin/settings/reset", {"section": "sending"})
    with app.app_context():
        assert db.session.scalar(select(Setting.key)) is None
        assert settings.get("SEND_RATE") == app.config["SEND_RATE"]


def test_errors_show_next_to_their_fields_and_nothing_is_saved(app, admin_client):
    response = admin_client.post(PAGE, data=_form(admin_client, MAIL_PORT="abc", MAIL_DEFAULT_SENDER="nobody",
                                                  SEND_RETRY_BASE="100", SEND_RETRY_MAX="10", SEND_RATE="5"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert _field_error(html, "MAIL_PORT") == "Enter a whole number."
    assert "Enter an address" in _field_error(html, "MAIL_DEFAULT_SENDER")
    assert "shorter than the first retry" in _field_error(html, "SEND_RETRY_MAX")
    assert 'value="abc"' in html  # what was typed stays in the field
    with app.app_context():
        assert db.session.scalar(select(Setting.key)) is None


def test_the_password_is_never_shown_back_nor_stored_in_clear(app, admin_client):
    secret = "Pa55-w0rd-never-shown"
    admin_client.post(PAGE, data=_form(admin_client, MAIL_USERNAME="mailer", MAIL_PASSWORD=secret))
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert secret not in html and "A password is set" in html
    assert re.search(r'<input[^>]*name="MAIL_PASSWORD"[^>]*>', html).group(0).endswith('value="">')
    with app.app_context():
        stored = db.session.scalar(select(Setting.value).where(Setting.key == "MAIL_PASSWORD"))
        assert secret not in str(stored)
        assert settings.smtp().password == secret
        from newsletter.models import AuditEvent

        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "settings.changed"))
        assert event.details["changed"] == ["MAIL_PASSWORD", "MAIL_USERNAME"] and secret not in str(event.details)

    # Saving other fields with the password left empty keeps it.
    admin_client.post(PAGE, data=_form(admin_client, MAIL_PORT="2526"))
    with app.app_context():
        assert settings.smtp().password == secret
    admin_client.post(PAGE, data=_form(admin_client, clear_password="y"))
    with app.app_context():
        assert settings.smtp().password is None
    assert "No password is set" in admin_client.get(PAGE).get_data(as_text=True)


def test_an_undecryptable_password_is_explained_on_the_page(app, admin_client):
    """A password saved under an older SECRET_KEY: the page says what to do (the session's key,
    which signs the admin's cookie, stays as it is)."""
    with app.app_context():
        old = settings.encrypt("old-secret", "the-previous-secret-key-0123")
        db.session.add(Setting(key="MAIL_PASSWORD", value={"encrypted": old}))
        db.session.commit()
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "SECRET_KEY has changed" in _field_error(html, "MAIL_PASSWORD")
    assert "old-secret" not in html


def test_test_button_reports_an_unreachable_server(app, admin_client):
    from tests.support.net import free_port

    admin_client.post(PAGE, data=_form(admin_client, MAIL_PORT=str(free_port())))
    response = post_form(admin_client, PAGE, "/admin/settings/test", {"to": "admin@example.com"})
    assert response.status_code == 302
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "did not accept us" in html and "Cannot reach the SMTP server" in html


def test_settings_are_admin_only(app, client):
    from newsletter.models import Role
    from newsletter.services.accounts import users

    with app.app_context():
        users.create_user("marketer@example.com", "correct horse battery", Role.MARKETER)
    assert login(client, "marketer@example.com", "correct horse battery").status_code == 302
    assert client.get(PAGE).status_code == 403
    # With a valid CSRF token (from a page a marketer may see), so the role check is what answers.
    token = csrf_token(client.get("/admin/").get_data(as_text=True))
    for action, data in ((PAGE, {"MAIL_PORT": "2525"}), ("/admin/settings/reset", {"section": "smtp"}),
                         ("/admin/settings/test", {"to": "marketer@example.com"})):
        assert client.post(action, data={**data, "csrf_token": token}).status_code == 403, action
    with app.app_context():
        assert db.session.scalar(select(Setting.key)) is None


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
@pytest.mark.parametrize("width", [1280, 390])
def test_page_in_a_browser_fits_desktop_and_phone(app, live_server, admin, width, tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with app.app_context():
        settings.save({"MAIL_PORT": "2525", "MAIL_TLS": "starttls", "MAIL_USERNAME": "mailer",
                       "MAIL_PASSWORD": "s3cret"}, admin)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(live_server + "/login")
            page.fill("#email", ADMIN_EMAIL)
            page.fill("#password", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.goto(live_server + PAGE)
            assert page.locator("h1").inner_text() == "Settings"
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            page.screenshot(path=shots / f"settings_{width}.png", full_page=True)

            page.fill("#SEND_RATE", "fast")
            page.click("text=Save settings")
            assert page.locator("#SEND_RATE-error").inner_text() == "Enter a number."
            assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
            page.screenshot(path=shots / f"settings_error_{width}.png", full_page=True)
            assert "s3cret" not in page.content()
        finally:
            browser.close()


def test_domain_throttles_and_the_notification_pool_are_checked(app, admin_client):
    response = admin_client.post(PAGE, data=_form(admin_client, DOMAIN_THROTTLES="gmail.com=20/week",
                                                  NOTIFY_POOL="nowhere"))
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "No enabled sending server is in the pool" in unescape(_field_error(html, "NOTIFY_POOL"))
    response = admin_client.post(PAGE, data=_form(admin_client, DOMAIN_THROTTLES="gmail.com=20/week"))
    assert "gmail.com=20/week" in unescape(_field_error(response.get_data(as_text=True), "DOMAIN_THROTTLES"))
    with app.app_context():
        assert db.session.scalar(select(Setting.key)) is None
    response = admin_client.post(PAGE, data=_form(admin_client, DOMAIN_THROTTLES="Gmail.com=20/s;yahoo.com=9/h"))
    assert response.status_code == 302
    with app.app_context():
        assert settings.get("DOMAIN_THROTTLES") == "gmail.com=20/s, yahoo.com=9/h"
        assert settings.domain_throttles() == {"gmail.com": ((20, 1),), "yahoo.com": ((9, 3600),)}
