"""Signing in through the real login form, CSRF token included."""
from __future__ import annotations

import re

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def login(client, email: str, password: str):
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))},
    )


def post_form(client, page_url: str, action: str, data: dict | None = None):
    """GET `page_url` for a CSRF token, then POST `data` to `action` like a browser would."""
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={**(data or {}), "csrf_token": token})


def sign_in_page(page, base: str, email: str | None = None, password: str | None = None) -> None:
    """Sign a Playwright page in through the login form (the session's admin unless told otherwise)."""
    from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

    page.goto(base + "/login")
    page.fill("#email", email or ADMIN_EMAIL)
    page.fill("#password", password or ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/admin/")
