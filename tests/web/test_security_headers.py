"""Security headers on every response, the reverse-proxy trust setting, and a real browser
walking the pages with no CSP violation (the policy is one the pages actually satisfy)."""
from __future__ import annotations

import shutil
import uuid

import pytest

from newsletter.models import ConsentSource, OptIn
from tests.support.web import sign_in_page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _assert_hardened(response, private: bool = True) -> None:
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self' 'nonce-" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "base-uri 'none'" in csp
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert "Strict-Transport-Security" not in headers  # plain http: HSTS would be ignored or wrong
    if private:
        assert "no-store" in headers["Cache-Control"]


def test_login_admin_and_api_carry_the_security_headers(app, admin_client):
    from newsletter.models import Role
    from newsletter.services.accounts import api_keys

    with app.app_context():
        _, api_key = api_keys.create_api_key("headers", Role.VIEWER)
    _assert_hardened(app.test_client().get("/login"))
    _assert_hardened(admin_client.get("/admin/"))
    _assert_hardened(admin_client.get("/admin/subscribers/"))
    _assert_hardened(app.test_client().get("/api/v1/lists", headers={"Authorization": f"Bearer {api_key}"}))
    _assert_hardened(app.test_client().get("/api/v1/lists"))  # a 401 problem too
    _assert_hardened(app.test_client().get("/no-such-page"))
    static = app.test_client().get("/static/app.js")
    assert static.headers["X-Content-Type-Options"] == "nosniff"
    assert "no-store" not in static.headers.get("Cache-Control", "")


def test_each_response_gets_its_own_script_nonce(app):
    client = app.test_client()
    first, second = (client.get("/login").headers["Content-Security-Policy"] for _ in range(2))
    assert first != second


def test_hsts_and_the_real_client_ip_only_through_a_trusted_proxy(app):
    from newsletter import create_app
    from newsletter.extensions import limiter

    behind_proxy = create_app({"TRUSTED_PROXIES": 1, "RATELIMIT_KEY_PREFIX": f"px-{uuid.uuid4().hex[:8]}"})
    with behind_proxy.app_context():
        limiter.reset()
    https = {"X-Forwarded-Proto": "https"}
    assert "max-age=" in behind_proxy.test_client().get("/login", headers=https).headers["Strict-Transport-Security"]
    # Without a trusted proxy the header is the client's own word: no HSTS, IP unchanged.
    assert "Strict-Transport-Security" not in app.test_client().get("/login", headers=https).headers

    with behind_proxy.app_context():
        from newsletter.services.audience import lists

        list_id = lists.create(f"Px {uuid.uuid4().hex[:6]}", OptIn.SINGLE, public=True).id
    client = behind_proxy.test_client()

    def signup(ip: str) -> int:
        return client.post(f"/subscribe/{list_id}", data={"email": f"{uuid.uuid4().hex[:8]}@example.org"},
                           headers={"X-Forwarded-For": ip}).status_code

    # The per-IP limit (5 a minute) follows X-Forwarded-For: one client is throttled, another is not.
    assert [signup("203.0.113.7") for _ in range(6)] == [302] * 5 + [429]
    assert signup("203.0.113.8") == 302


@pytest.mark.skipif(not CHROMIUM, reason="no chromium executable (apt-get install chromium)")
def test_no_page_logs_a_csp_violation_in_a_browser(app, live_server, admin, worker):
    from playwright.sync_api import sync_playwright

    from newsletter.services.audience import links, lists, subscriptions
    from newsletter.services.campaigns import campaigns, layouts

    with app.app_context():
        list_id = lists.create("CSP weekly", OptIn.SINGLE, public=True).id
        subscriber_id = subscriptions.subscribe("csp@example.org", [list_id], source=ConsentSource.ADMIN,
                                                confirmed=True, name="Csp").subscriber_id
        layout_id = layouts.create("CSP layout", '<div style="color:#333">{{ content }}</div>').id
        campaign_id = campaigns.create(
            name="CSP check", subject="Hello {{ subscriber.name }}", list_ids=[list_id], layout_id=layout_id,
            from_email="news@example.org",
            html='<style>p { color: red }</style><p style="font-size:16px">Hi <img src="data:image/gif;base64,'
                 'R0lGODlhAQABAAAAACw=" alt=""></p>').id
        preferences = links.preferences_url(subscriber_id).split("/preferences/")[1]
    pages = ["/admin/", "/admin/lists/", f"/admin/lists/{list_id}", "/admin/subscribers/",
             f"/admin/subscribers/{subscriber_id}", "/admin/subscribers/suppressions", "/admin/imports/",
             "/admin/campaigns/", "/admin/campaigns/new", f"/admin/campaigns/{campaign_id}",
             f"/admin/campaigns/{campaign_id}/edit", "/admin/layouts/", f"/admin/layouts/{layout_id}",
             "/admin/send-log/", "/admin/webhooks/", "/admin/api-keys/", "/admin/users/", "/admin/settings/",
             "/admin/audit/", "/admin/outbox/", "/api/v1/docs", "/subscribe", f"/subscribe/{list_id}",
             f"/preferences/{preferences}"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        violations: list[str] = []
        page.on("console", lambda msg: violations.append(f"{page.url}: {msg.text}")
                if "Content Security Policy" in msg.text else None)
        sign_in_page(page, live_server)
        # The dashboard's inline script (nonce) runs: it fills the status list from status.json.
        page.wait_for_selector('[data-check="workers"].ok, [data-check="workers"].down', timeout=15000)
        for path in pages:
            response = page.goto(live_server + path)
            assert response is not None and response.status < 400, (path, response and response.status)
            page.wait_for_load_state("networkidle")
        page.goto(live_server + "/api/v1/docs")
        page.wait_for_selector(".swagger-ui .info", timeout=15000)  # Swagger's start-up script ran
        browser.close()
    assert violations == []
