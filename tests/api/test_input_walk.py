"""Hostile input on every API route: NUL bytes, oversized integers, JSON nested too deeply.

No route, including ones added later, may answer 5xx (see tests/support/input_walk.py).
"""
from __future__ import annotations

from tests.support.input_walk import WRITES, plain_url, report, routes, walk

PROBLEM = "application/problem+json"
DEEP_BODIES = ("[" * 100_000 + "]" * 100_000, '{"a":' * 2000 + "1" + "}" * 2000, '{"data":' * 1000 + "{}" + "}" * 1000)


def test_no_api_route_answers_5xx_to_bad_input(app, client, api_key, monkeypatch):
    headers = {"Authorization": f"Bearer {api_key('admin')}"}
    failures = walk(app, client, monkeypatch, api=True, headers=headers, token="")
    assert not failures, report(failures)


def test_deeply_nested_json_is_a_400_problem_on_every_api_write(app, client, api_key):
    headers = {"Authorization": f"Bearer {api_key('admin')}", "Content-Type": "application/json"}
    wrong, checked = [], 0
    for rule, method in routes(app, api=True):
        if method not in WRITES:
            continue
        for body in DEEP_BODIES:
            response = client.open(plain_url(rule), method=method, headers=headers, data=body)
            checked += 1
            detail = (response.get_json(silent=True) or {}).get("detail", "")
            if response.status_code != 400 or response.mimetype != PROBLEM or "nested" not in detail:
                wrong.append((method, rule.rule, response.status_code, detail))
    assert checked >= 10
    assert wrong == []


def test_a_nul_byte_in_a_query_parameter_is_a_400_naming_it(api):
    problem = api.get("/api/v1/subscribers?cursor=%00")
    assert problem.status_code == 400 and problem.mimetype == PROBLEM
    assert problem.get_json()["errors"] == [{"field": "cursor", "message": "Must not contain NUL characters."}]
