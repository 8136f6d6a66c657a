"""Absolute links for emails (confirm, unsubscribe, preferences, manage), signed and rooted at BASE_URL."""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from . import tokens


def _adapter() -> Any:
    # Workers build these links outside any request, and a request's Host header is
    # attacker-controlled anyway: BASE_URL is the only trustworthy origin. Bound once per app
    # (a campaign builds three links per recipient).
    cached = current_app.extensions.get("newsletter.link_adapter")
    if cached is None or cached[0] != current_app.config["BASE_URL"]:
        base = urlsplit(current_app.config["BASE_URL"])
        adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
        cached = current_app.extensions["newsletter.link_adapter"] = (current_app.config["BASE_URL"], adapter)
    return cached[1]


def _external(endpoint: str, **values: Any) -> str:
    return _adapter().build(endpoint, values, force_external=True)


_TOKEN_MARK = "TOKEN0MARK"


def url_parts(endpoint: str) -> tuple[str, ...]:
    """The endpoint's URL before and after its token: `token.join(parts)` is the link.

    Built once per app and endpoint, so a link is made without the router. Tokens are URL-safe
    base64 and dots, which the router leaves as they are (a test compares both)."""
    cache = current_app.extensions.setdefault("newsletter.link_prefixes", {})
    key = (endpoint, current_app.config["BASE_URL"])
    parts = cache.get(key)
    if parts is None:
        parts = cache[key] = tuple(_external(endpoint, token=_TOKEN_MARK).split(_TOKEN_MARK))
    return parts


def _tokened(endpoint: str, token: str) -> str:
    """`_external(endpoint, token=token)` without the router on every call (see url_parts)."""
    return token.join(url_parts(endpoint))


def confirm_url(subscriber_id: int, list_ids: list[int], version: int | None = None) -> str:
    return _external("public.confirm", token=tokens.confirm_token(subscriber_id, list_ids, version))


def unsubscribe_url(subscriber_id: int, list_ids: list[int] | None = None, campaign_id: int | None = None,
                    version: int | None = None) -> str:
    """No `list_ids` means "every list" (and a global suppression) when followed.

    `version`: the subscriber's token_version (looked up when not given; the send path gives it)."""
    return _tokened("public.unsubscribe", tokens.unsubscribe_token(subscriber_id, list_ids, campaign_id, version))


def preferences_url(subscriber_id: int, version: int | None = None) -> str:
    return _tokened("public.preferences", tokens.preferences_token(subscriber_id, version))


def manage_url(subscriber_id: int, version: int | None = None) -> str:
    return _external("public.manage_link", token=tokens.manage_token(subscriber_id, version))


def web_view_url(campaign_id: int, subscriber_id: int | None, version: int | None = None) -> str:
    return _tokened("public.web_view", tokens.view_token(campaign_id, subscriber_id, version))


def preview_url(endpoint: str) -> str:
    """The inert link a preview or test email shows in place of a signed one (see tokens.PREVIEW)."""
    return _tokened(endpoint, tokens.PREVIEW)
