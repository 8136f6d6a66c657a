"""Walk the URL map: every /api/v1 route, including ones added later, needs a key with the right role."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from werkzeug.routing import Rule

from tests.web.test_auth import _placeholder

PROBLEM = "application/problem+json"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BAD_CREDENTIALS = {
    "no key": {},
    "unknown key": {"Authorization": "Bearer nl_AAAAAAAAnot-a-key-at-all"},
    "empty bearer": {"Authorization": "Bearer "},
    "basic auth": {"Authorization": "Basic YWRtaW46cGFzc3dvcmQ="},
}


def _api_routes(app) -> Iterator[tuple[str, str]]:
    """(url, method) for every method of every /api/v1 rule, with placeholder ids."""
    for rule in app.url_map.iter_rules():
        if not (rule.rule == "/api/v1" or rule.rule.startswith("/api/v1/")):
            continue
        url = _url(rule)
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            yield url, method


def _url(rule: Rule) -> str:
    return rule.build({arg: _placeholder(rule, arg) for arg in rule.arguments})[1]


def _send(client, method: str, url: str, headers: dict[str, str]):
    body = {"json": {}} if method in WRITES else {}
    return client.open(url, method=method, headers=headers, **body)


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_every_api_route_answers_401_without_a_valid_key(app, client, api_key, credentials):
    api_key("admin")  # a key exists, so "no rows" is not why the bad one fails
    wrong = []
    routes = list(_api_routes(app))
    for url, method in routes:
        response = _send(client, method, url, BAD_CREDENTIALS[credentials])
        if response.status_code != 401 or response.mimetype != PROBLEM \
                or not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            wrong.append((method, url, response.status_code, response.mimetype))
    assert len(routes) >= 5, routes
    assert wrong == []


def test_revoked_key_gets_401_everywhere(app, client, api_key):
    from newsletter.services.accounts import api_keys

    raw = api_key("admin")
    with app.app_context():
        api_keys.revoke(api_keys.list_keys()[0].id)
    headers = {"Authorization": f"Bearer {raw}"}
    wrong = [(method, url, status) for url, method in _api_routes(app)
             if (status := _send(client, method, url, headers).status_code) != 401]
    assert wrong == []


def test_signed_in_session_opens_only_the_docs(app, admin_client):
    """The admin UI's cookie reads the docs; it must never authorize API calls (no CSRF on /api)."""
    assert admin_client.get("/api/v1/openapi.json").status_code == 200
    assert admin_client.get("/api/v1/docs").status_code == 200
    wrong = [(method, url, status) for url, method in _api_routes(app)
             if url not in ("/api/v1/openapi.json", "/api/v1/docs")
             and (status := _send(admin_client, method, url, {}).status_code) != 401]
    assert wrong == []


def test_viewer_key_may_read_everything_and_write_nothing(app, client, api_key):
    headers = {"Authorization": f"Bearer {api_key('viewer')}"}
    refused_reads, allowed_writes, reads, writes = [], [], 0, 0
    for url, method in _api_routes(app):
        status = _send(client, method, url, headers).status_code
        if method in WRITES:
            writes += 1
            if status != 403:
                allowed_writes.append((method, url, status))
        else:
            reads += 1
            if status in (401, 403):
                refused_reads.append((method, url, status))
    assert reads >= 3 and writes >= 3
    assert allowed_writes == [] and refused_reads == []


def test_marketer_key_is_not_refused_anywhere(app, client, api_key):
    """The role check is not so strict that it blocks the role meant for integrations."""
    headers = {"Authorization": f"Bearer {api_key('marketer')}"}
    refused = [(method, url, status) for url, method in _api_routes(app)
               if (status := _send(client, method, url, headers).status_code) in (401, 403)]
    assert refused == []


def test_ids_beyond_the_integer_columns_are_404_everywhere(app, client, api_key):
    """An id no row can have answers 404 on every route, not a database error (PostgreSQL overflows
    at 2**31, SQLite at 2**63)."""
    headers = {"Authorization": f"Bearer {api_key('admin')}"}
    wrong = []
    for rule in app.url_map.iter_rules():
        ints = [arg for arg in rule.arguments if _placeholder(rule, arg) == 999999]
        if not rule.rule.startswith("/api/v1/") or not ints:
            continue
        url = rule.build({arg: 2**63 if arg in ints else "x" for arg in rule.arguments})[1]
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            response = _send(client, method, url, headers)
            if response.status_code != 404 or response.mimetype != PROBLEM:
                wrong.append((method, url, response.status_code))
    assert wrong == []
