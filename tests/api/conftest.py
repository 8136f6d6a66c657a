"""API fixtures: keys of each role and a test client that sends one."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def api_key(app) -> Callable[[str], str]:
    """Create an API key with a role; returns the raw key."""
    from newsletter.models import Role
    from newsletter.services.accounts import api_keys

    def make(role: str = "marketer") -> str:
        with app.app_context():
            _, raw = api_keys.create_api_key(f"test {role}", Role(role))
        return raw

    return make


class ApiClient:
    """The Flask test client with `Authorization: Bearer <key>` on every call."""

    def __init__(self, client: Any, key: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {key}"}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self.client, method)

        def send(url: str, **kwargs: Any) -> Any:
            kwargs["headers"] = {**self.headers, **kwargs.get("headers", {})}
            return call(url, **kwargs)

        return send


@pytest.fixture
def api(client, api_key) -> ApiClient:
    """A marketer key's client (reads and writes)."""
    return ApiClient(client, api_key("marketer"))


@pytest.fixture
def api_as(client, api_key) -> Callable[[str], ApiClient]:
    return lambda role: ApiClient(client, api_key(role))
