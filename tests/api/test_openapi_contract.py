"""Every operation in /api/v1/openapi.json, fuzzed in-process with schemathesis.

The operations come from the document the app serves, so resources added later are covered
without touching this file. Each gets a fixed, seeded number of generated requests, valid and
invalid, sent with a marketer key; every response must be no 5xx and match the documented
status codes, content types, headers and body schemas.

(schemathesis' own `from_fixture(...).parametrize()` needs pytest's private `Item._nodeid`,
which pytest 9 removed, so the loop over operations is ours.)
"""
from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES_PER_OPERATION = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES_PER_OPERATION, derandomize=True, database=None, deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck), report_multiple_bugs=False,
    # A failure is reported as found: shrinking a 500 through the database is slow and rarely clearer.
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
)


@pytest.fixture
def api_schema(app, worker, api_key):
    """The served document; `worker` because some operations enqueue Celery tasks."""
    headers = {"Authorization": f"Bearer {api_key('marketer')}"}
    config = schemathesis.Config.from_dict({"headers": headers})
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=config, headers=headers)


def _fuzz(operation, mode: GenerationMode) -> int:
    """Send the generated requests; returns how many were sent."""
    sent = 0

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(mode))
    def run(case):
        nonlocal sent
        sent += 1
        case.call_and_validate(checks=CHECKS)

    run()
    return sent


def _describe(error: BaseException, max_lines: int = 60) -> str:
    """schemathesis' own report of the failure (with a curl command), cut to a readable length."""
    lines = f"{type(error).__name__}: {error}\n" .splitlines() + list(getattr(error, "__notes__", []))
    return "\n".join(lines[:max_lines] + (["  [...]"] if len(lines) > max_lines else []))


@pytest.mark.timeout(600)
def test_every_operation_conforms_to_the_document(api_schema):
    failures, operations, sent = [], 0, 0
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                sent += _fuzz(operation, mode)
            # schemathesis' FailureGroup is a BaseExceptionGroup. Collected, so no operation hides another.
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"--- {operation.label} ({mode.value} data)\n{_describe(error)}")
    assert operations >= 5, "the document lists too few operations: is the API registered?"
    print(f"{sent} requests to {operations} operations")
    assert sent >= operations * 10, "hypothesis generated far fewer requests than asked for"
    assert not failures, f"{len(failures)} operation(s) break the contract:\n\n" + "\n\n".join(failures)
