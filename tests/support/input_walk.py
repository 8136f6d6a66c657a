"""Walk the URL map with hostile input (tests/web/test_input_walk.py, tests/api/test_input_walk.py).

Every rule and method is called with a NUL byte, an integer too big for any id column and a
non-ASCII digit in each path segment, in each query parameter and form field the route reads
(found by recording what the view asks for, and for the API from the OpenAPI document) and in
a generic set of names. The walk returns whatever answered 5xx.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import Rule

HUGE = "99999999999999999999"  # > 2**64: overflows SQLite INTEGER and PostgreSQL bigint
NUL = "a\x00b"
VALUES = (NUL, HUGE, "\u00b2")  # "²".isdigit() is True, yet int("²") raises
GENERIC_NAMES = ("q", "id", "ids", "cursor", "before", "after", "list_id", "list_ids", "campaign_id",
                 "status", "limit", "next", "email")
ARG = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")  # a rule's <converter:name>
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def placeholder(rule: Rule, arg: str) -> Any:
    """A value the route's converter accepts: an unknown id for ints, a word otherwise."""
    converter = rule._converters[arg]
    return 999999 if type(converter).__name__ in ("IntegerConverter", "NumberConverter") else "x"


def url_for_rule(rule: Rule, values: dict[str, Any]) -> str:
    """The rule's path with `values` in its segments, whether or not the converters accept them."""
    return ARG.sub(lambda m: quote(str(values[m.group(1)]), safe=""), rule.rule)


def plain_url(rule: Rule) -> str:
    return url_for_rule(rule, {arg: placeholder(rule, arg) for arg in rule.arguments})


class Recording(ImmutableMultiDict):
    """Query args and form data that note every name a view asks for."""

    seen: set[str] = set()

    def __getitem__(self, key: Any) -> Any:
        Recording.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # noqa: A002
        Recording.seen.add(key)
        return super().get(key, default, type)

    def getlist(self, key: Any, type: Any = None) -> Any:  # noqa: A002
        Recording.seen.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        Recording.seen.add(str(key))
        return super().__contains__(key)


def routes(app, api: bool, skip: frozenset[str] = frozenset()) -> Iterator[tuple[Rule, str]]:
    """(rule, method) for every rule under /api/ (api=True) or every other rule."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule.startswith("/api/") == api and rule.endpoint not in skip:
            for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
                yield rule, method


def _urls(rule: Rule) -> Iterator[str]:
    """The route with placeholder values, then with each path segment replaced by each bad value."""
    base = {arg: placeholder(rule, arg) for arg in rule.arguments}
    yield url_for_rule(rule, base)
    for arg in rule.arguments:
        for value in (*VALUES, "-1"):
            yield url_for_rule(rule, {**base, arg: value})


def send(client, rule: Rule, method: str, url: str, token: str, headers: dict, name: str | None = None,
         value: Any = None) -> Any:
    """One request; `name=value` goes in the query of a read, the form or JSON body of a write."""
    if method not in WRITES:
        return client.open(url, method=method, headers=headers, query_string={name: value} if name else None)
    if rule.rule.startswith("/api/"):
        body = {name: int(value) if value == HUGE else value} if name else {}
        return client.open(url, method=method, headers=headers, json=body)
    return client.open(url, method=method, headers=headers,
                       data={"csrf_token": token, **({name: value} if name else {})})


def _names_read(client, rule: Rule, method: str, url: str, token: str, headers: dict) -> set[str]:
    Recording.seen = set()
    try:
        send(client, rule, method, url, token, headers)
    except Exception:  # noqa: BLE001  (the walk itself reports it)
        pass
    return Recording.seen - {"csrf_token"}


def _documented_names(client, headers: dict) -> dict[tuple[str, str], set[str]]:
    """(path, method) -> the query parameters and body properties the OpenAPI document lists."""
    spec = client.get("/api/v1/openapi.json", headers=headers).get_json()
    schemas = spec["components"]["schemas"]
    names: dict[tuple[str, str], set[str]] = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in WRITES | {"GET"}:
                continue  # path-level "parameters"
            found = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            for media in operation.get("requestBody", {}).get("content", {}).values():
                ref = media.get("schema", {}).get("$ref", "")
                found |= set(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            names[(path, method.upper())] = found
    return names


def _openapi_path(rule: Rule) -> str:
    return ARG.sub(r"{\1}", rule.rule)


def walk(app, client, monkeypatch, api: bool, headers: dict, token: str,
         keep=lambda rule: True, skip: frozenset[str] = frozenset()) -> list[tuple]:
    """Every (method, url, name, value, status) that answered 5xx."""
    monkeypatch.setattr(app.request_class, "parameter_storage_class", Recording)
    documented = _documented_names(client, headers) if api else {}
    failures, checked = [], 0
    for rule, method in routes(app, api, skip):
        if not keep(rule):
            continue
        urls = list(_urls(rule))
        names = _names_read(client, rule, method, urls[0], token, headers)
        names |= documented.get((_openapi_path(rule), method), set())
        calls: list[tuple[str, str | None, Any]] = [(url, None, None) for url in urls]
        calls += [(urls[0], name, value) for name in sorted(names) for value in VALUES]
        calls += [(urls[0], name, NUL) for name in GENERIC_NAMES if name not in names]
        for url, name, value in calls:
            checked += 1
            try:  # under TESTING the app re-raises what would have been a 500
                status = send(client, rule, method, url, token, headers, name, value).status_code
            except Exception as exc:  # noqa: BLE001  (any exception is the finding)
                status = f"500 {type(exc).__name__}: {str(exc)[:80]}"
            if not isinstance(status, int) or status >= 500:
                failures.append((method, url, name, value, status))
    assert checked > 300, checked
    return failures


def report(failures: list[tuple]) -> str:
    return f"{len(failures)} requests answered 5xx:\n" + "\n".join(map(repr, failures))
