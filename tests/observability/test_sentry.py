"""Errors reach Sentry from the web process and from a worker, with no subscriber data in them.

The DSN points at a receiver on loopback (tests/support/sentry.py). The failures are real:
SQLite triggers make the database refuse a notification at two points of the real send path,
with an error message that quotes the address and the template data (as a database's own
errors quote values) and a SQLAlchemy error that lists the bound parameters (address, rendered
body, claim token):
- in the web request that accepts the notification (the API answers 500);
- in the worker, when the sent notification is marked `sent`.
Everything that arrives is searched for the addresses, the password, the reset token, the API
key, the cookie and the message body of the failing calls.
"""
from __future__ import annotations

import os
import secrets
import sqlite3
import subprocess

import pytest

from tests.support.net import wait_for
from tests.support.processes import BIN, ROOT, celery_worker, gunicorn
from tests.support.sentry import SentryReceiver

from .conftest import call

WEB_ADDRESS, WORKER_ADDRESS = "web-fail@example.org", "worker-fail@example.org"
PASSWORD, RESET_TOKEN, QUERY_TOKEN = "Tr0ub4dor-and-3", "rst-5b2d9f61c0a84e7f", "qry-9e1c44d0b7a2"
COOKIE, BODY = "session-cookie-4f1e8d2a", "Only-for-Ada body 7d1c"
# The triggers quote the address and the data in the error, as PostgreSQL's "Key (email)=(...)" would.
TRIGGERS = {
    "web": f"""CREATE TRIGGER fail_web BEFORE INSERT ON notifications WHEN NEW.email = '{WEB_ADDRESS}'
               BEGIN SELECT json_extract('{{}}', 'refused ' || NEW.email || ' ' || NEW.data); END""",
    "worker": f"""CREATE TRIGGER fail_worker BEFORE UPDATE OF status ON notifications
                  WHEN NEW.status = 'sent' AND NEW.email = '{WORKER_ADDRESS}'
                  BEGIN SELECT json_extract('{{}}', 'refused ' || NEW.email || ' ' || NEW.data); END""",
}


@pytest.fixture
def failing_db(own_platform):
    """own_platform (its own Redis and SQLite database, an API key) with the two triggers."""
    env, key = own_platform
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite:///")) as db:
        for trigger in TRIGGERS.values():
            db.execute(trigger)
    return env, key


def notify(base: str, key: str, address: str) -> tuple[int, str]:
    status, headers, _ = call("POST", f"{base}/api/v1/notifications?token={QUERY_TOKEN}", body={
        "to": address, "subject": "Reset your password",
        "html": f"<p>{BODY}: <a href='{{{{ reset_url }}}}'>reset</a></p>",
        "data": {"password": PASSWORD, "reset_url": f"https://example.com/reset?token={RESET_TOKEN}"},
    }, headers={"Authorization": f"Bearer {key}", "Cookie": f"session={COOKIE}"})
    return status, headers["X-Request-ID"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_web_and_worker_errors_arrive_scrubbed(failing_db, smtp_server):
    env, key = failing_db
    with SentryReceiver() as receiver:
        # Production mode: under `testing` Flask re-raises a view's error past its handlers.
        env = {**env, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "SENTRY_DSN": receiver.dsn, "SENTRY_ENVIRONMENT": "ci", "SENTRY_TRACES_SAMPLE_RATE": "1"}
        with gunicorn(env) as (base, _), celery_worker(env, queues="transactional", concurrency=1):
            web_status, web_request = notify(base, key, WEB_ADDRESS)
            worker_status, worker_request = notify(base, key, WORKER_ADDRESS)
            assert (web_status, worker_status) == (500, 202)
            wait_for(lambda: smtp_server.received.get(WORKER_ADDRESS), 60, 0.1, "the worker to send")
            wait_for(lambda: len(receiver.events()) >= 2, 60, 0.2, "both events")
            # Traces too (every request and task sampled here): they go through the same scrubber.
            wait_for(lambda: any(t.get("transaction", "").endswith("send_notification")
                                 for t in receiver.items("transaction")), 60, 0.2, "the task's trace")

    events = receiver.events()
    web = [e for e in events if e.get("request", {}).get("url", "").endswith("/api/v1/notifications")]
    worker = [e for e in events if "celery-job" in e.get("extra", {})]
    assert len(web) == 1 and len(worker) == 1, [e.get("transaction") for e in events]
    for event, request_id in ((web[0], web_request), (worker[0], worker_request)):
        exception = event["exception"]["values"][-1]
        assert exception["type"] == "OperationalError"
        # The statement's values never reach the message (the engine's hide_parameters); the
        # trigger's own words quote the address, which the scrubber replaced.
        assert "refused [email]" in exception["value"] and "SQL parameters hidden" in exception["value"]
        assert event["environment"] == "ci"
        assert event["tags"]["request_id"] == request_id  # the error leads to its log lines
    assert worker[0]["extra"]["celery-job"]["task_name"] == "newsletter.tasks.notifications.send_notification"
    assert web[0]["request"]["headers"]["Authorization"] == "[Filtered]"

    received = b"".join(receiver.bodies).decode("utf-8", "replace")
    for secret in (WEB_ADDRESS, WORKER_ADDRESS, PASSWORD, RESET_TOKEN, QUERY_TOKEN, key, key[3:], COOKIE, BODY):
        assert secret not in received, secret
    assert "@example.org" not in received


def _imports_sentry(module: str, **env: str) -> bool:
    code = f"import sys, {module}; print('sentry_sdk' in sys.modules)"
    result = subprocess.run([str(BIN / "python"), "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**{k: v for k, v in os.environ.items() if k != "SENTRY_DSN"}, **env}, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1] == "True"


def test_without_sentry_dsn_the_sdk_is_not_even_imported(platform_env):
    for module in ("wsgi", "celery_worker"):
        assert not _imports_sentry(module)
        assert _imports_sentry(module, SENTRY_DSN="http://key@127.0.0.1:9/1")  # the check can see it


def test_the_scrubber_on_the_shapes_it_knows():
    from newsletter.observability.scrub import scrub

    event = scrub({
        "message": "mail to ada@example.com failed; Authorization: Bearer abc.def; key nl_" + "x" * 43,
        "extra": {"password": "pw", "html": "<p>Hi</p>", "nested": [{"api_key": "k"}, "/unsubscribe/tok.en.sig"]},
        "request": {"query_string": "a=1&token=zzz", "headers": {"Cookie": "c=1", "X-Api-Key": "k"}},
        "breadcrumbs": {"values": [{"message": '{"password": "two words", "name": "Ada"}'}]},
    })
    assert event["message"] == "mail to [email] failed; Authorization: Bearer [Filtered]; key [Filtered]"
    assert event["extra"] == {"password": "[Filtered]", "html": "[Filtered]",
                              "nested": [{"api_key": "[Filtered]"}, "/unsubscribe/<redacted>"]}
    assert event["request"] == {"query_string": "a=1&token=<redacted>",
                                "headers": {"Cookie": "[Filtered]", "X-Api-Key": "[Filtered]"}}
    assert event["breadcrumbs"]["values"][0]["message"] == '{"password": [Filtered], "name": "Ada"}'


def test_sentry_settings():
    from newsletter.config import ConfigError, build_config

    config = build_config({})
    assert (config["SENTRY_DSN"], config["SENTRY_ENVIRONMENT"], config["SENTRY_TRACES_SAMPLE_RATE"]) == \
        ("", "development", 0.0)
    config = build_config({"SENTRY_DSN": " http://k@127.0.0.1:9/1 ", "SENTRY_ENVIRONMENT": "staging",
                           "SENTRY_TRACES_SAMPLE_RATE": "0.25"})
    assert (config["SENTRY_DSN"], config["SENTRY_ENVIRONMENT"], config["SENTRY_TRACES_SAMPLE_RATE"]) == \
        ("http://k@127.0.0.1:9/1", "staging", 0.25)
    with pytest.raises(ConfigError, match="SENTRY_TRACES_SAMPLE_RATE must be between 0 and 1"):
        build_config({"SENTRY_TRACES_SAMPLE_RATE": "5"})
