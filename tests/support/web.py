"""Signing in through the real login form, CSRF token included; telling an English sentence."""
from __future__ import annotations

import re

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# English function words that are no German words: two of them in one run of text make an English
# sentence ("was", "will", "die", "an", "in", "so" are German too, so they are not here).
FUNCTION_WORDS = frozenset(("the", "is", "are", "this", "that", "these", "with", "your", "you", "of", "and", "or",
                            "to", "for", "from", "has", "have", "been", "be", "can", "cannot", "must", "it", "its",
                            "not", "only", "which", "there", "their", "they", "when", "what", "into", "yet"))


def is_english(text: str) -> bool:
    """Whether `text` reads as an English sentence: two or more different English function words."""
    return len({w.lower() for w in re.findall(r"[A-Za-z]+", text)} & FUNCTION_WORDS) >= 2


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
