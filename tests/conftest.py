"""Real-service fixtures.

With nothing set, the suite runs on SQLite and an embedded redis-server it starts itself.
With DATABASE_URL / REDIS_URL / CELERY_BROKER_URL / CELERY_RESULT_BACKEND set, it runs on
those servers (a fresh PostgreSQL database is created for the session and dropped after).
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import delete, make_url

from newsletter.config import database_uri
from newsletter.devserver.embedded_redis import EmbeddedRedis
from tests.support.dns import DnsServer, dns_server
from tests.support.isolation import private_redis_db, private_vhost
from tests.support.net import free_port
from tests.support.processes import celery_beat, flask_cli, platform_workers
from tests.support.smtp import RecordingSmtpServer

# Metric values of this run (this process and the workers it starts) in a folder of its own, chosen
# before any test module imports prometheus_client (newsletter/metrics/multiproc.py).
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="nl-metrics-")
os.environ.pop("NEWSLETTER_METRICS_ROOT", None)
atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "correct horse battery"
_SMTP_SERVERS: list[RecordingSmtpServer] = []
_DNS_SERVERS: list[DnsServer] = []
_SESSION_STACK = ExitStack()
TEST_SEND_SETTINGS = {
    "SEND_RATE": "1000", "SEND_BATCH_SIZE": "25", "SEND_WINDOW": "100", "SEND_RETRY_BASE": "0.5",
    "SEND_RETRY_MAX": "1", "SEND_MAX_ATTEMPTS": "4", "SEND_CLAIM_TIMEOUT": "10", "SEND_QUEUED_TIMEOUT": "8",
    "SWEEP_INTERVAL": "1", "SCHEDULER_INTERVAL": "1", "SEND_PAUSE_AFTER_ERRORS": "30", "AUTOMATION_INTERVAL": "1",
    "LEASE_TTL": "4", "LEASE_RENEW_INTERVAL": "0.5",  # a dead worker's claims recovered within ~5 s
    "WORKER_PREFETCH_MULTIPLIER": "1",  # batches wait in the broker, where a fault can lose them
    "WEBHOOK_POLL_INTERVAL": "0.5", "WEBHOOK_RETRY_BASE": "0.5", "WEBHOOK_TIMEOUT": "2",
    "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",  # the tests' receivers; net_policy refuses loopback otherwise
    "BOUNCE_ADDRESS": "bounces@example.org",  # every message goes out with a VERP return path
}


def pytest_collection_modifyitems(config, items) -> None:
    """`.ci/run` runs the suite twice, on the embedded defaults and on PostgreSQL + Redis + RabbitMQ.
    A test marked `one_pass` checks nothing that differs between the two (a page's layout and scripts
    in a browser, static files, packaging, pure functions, processes on servers of their own), so the
    second pass skips it: CI stays under 30 minutes and the embedded pass (a local `make test`) keeps
    it. BOTH_PASSES=1 runs such tests on the external servers too."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres") or os.environ.get("BOTH_PASSES"):
        return
    skip = pytest.mark.skip(reason="one_pass: runs in the embedded pass of .ci/run (BOTH_PASSES=1 runs it here)")
    for item in items:
        if item.get_closest_marker("one_pass"):
            item.add_marker(skip)


def _create_postgres_database(url: str) -> tuple[str, str]:
    """Create a throwaway database next to the one `url` names; return (its URL, admin URL)."""
    import psycopg

    base = make_url(database_uri(url))
    name = f"nltest_{uuid.uuid4().hex[:10]}"
    admin = base.set(drivername="postgresql", database=base.database or "postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return base.set(database=name).render_as_string(hide_password=False), admin.render_as_string(hide_password=False)


def _drop_postgres_database(test_url: str, admin_url: str) -> None:
    import psycopg

    name = make_url(test_url).database
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def platform_env() -> Iterator[dict[str, str]]:
    """Point this process and every subprocess at the session's servers."""
    instance = Path(tempfile.mkdtemp(prefix="nl-"))  # short: unix socket paths are limited to 107 bytes
    saved = dict(os.environ)
    redis_server = None
    pg = None
    os.environ.update({"NEWSLETTER_ENV": "testing", "INSTANCE_PATH": str(instance)})
    os.environ.pop("SECRET_KEY", None)

    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql")):
        pg = _create_postgres_database(os.environ["DATABASE_URL"])
        os.environ["DATABASE_URL"] = pg[0]
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{instance / 'test.db'}"
    if not os.environ.get("REDIS_URL"):
        redis_server = EmbeddedRedis(instance / "redis").start()
        os.environ["REDIS_URL"] = redis_server.url
    elif os.environ["REDIS_URL"].startswith("redis://"):
        # Shared servers: this session's own Redis database and vhost (tests/support/isolation.py).
        os.environ["REDIS_URL"] = _SESSION_STACK.enter_context(private_redis_db(os.environ["REDIS_URL"]))
    if os.environ.get("CELERY_BROKER_URL", "").startswith("amqp"):
        os.environ["CELERY_BROKER_URL"] = _SESSION_STACK.enter_context(private_vhost(os.environ["CELERY_BROKER_URL"]))

    smtp_port = free_port()
    os.environ.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port)})
    # Send-pipeline settings scaled down so retries, recovery and windows happen within seconds.
    os.environ.update(TEST_SEND_SETTINGS)
    catcher = RecordingSmtpServer(str(instance / "outbox"), smtp_port).start()
    _SMTP_SERVERS.append(catcher)
    # Every DNS question of the app and its workers goes to this loopback server, never the real DNS.
    dns = _SESSION_STACK.enter_context(dns_server())
    _DNS_SERVERS.append(dns)
    os.environ["DNS_RESOLVER"] = f"127.0.0.1:{dns.port}"

    upgrade = flask_cli("db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    try:
        yield dict(os.environ)
    finally:
        catcher.stop()
        _SESSION_STACK.close()
        if redis_server:
            redis_server.stop()
        if pg:
            _drop_postgres_database(*pg)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def app(platform_env):
    from newsletter import create_app

    # No app context is held open: a test request would reuse it, and with it one
    # SQLAlchemy session across requests. Tests open `app.app_context()` where they need one.
    return create_app({"RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(autouse=True)
def _session_celery_app(request) -> None:
    """Tasks run in this session's app: a test that made an app of its own (a broken database,
    other settings) left its Celery app as the default, and `task.apply()` would run there."""
    if "app" in request.fixturenames:
        celery_app = request.getfixturevalue("app").extensions["celery"]
        celery_app.set_default()
        celery_app.set_current()


@pytest.fixture(autouse=True)
def _clean_tables(request) -> Iterator[None]:
    """Every test starts from empty tables (the schema comes from the migrations)."""
    yield
    if "app" not in request.fixturenames:
        return
    from sqlalchemy.exc import OperationalError

    from newsletter.extensions import db

    app = request.getfixturevalue("app")
    with app.app_context():
        # A worker may still be finishing a cancelled campaign's last batch: PostgreSQL can then
        # pick this cleanup as a deadlock victim. It rolled back; doing it again is safe.
        for attempt in range(5):
            db.session.rollback()
            try:
                for table in reversed(db.metadata.sorted_tables):
                    db.session.execute(delete(table))
                db.session.commit()
                return
            except OperationalError:
                if attempt == 4:
                    raise
                time.sleep(0.5)


@pytest.fixture
def client(app):
    from newsletter.extensions import limiter

    with app.app_context():
        limiter.reset()  # throttling counters must not carry over from earlier tests
    return app.test_client()


@pytest.fixture
def admin(app):
    from newsletter.services.accounts import users

    with app.app_context():
        user, _ = users.create_or_reset_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        return user.id


@pytest.fixture
def admin_client(client, admin):
    from tests.support.web import login

    response = login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture(scope="session")
def _workers(platform_env):
    with platform_workers(platform_env) as logs:
        yield logs


@pytest.fixture(scope="session")
def worker(_workers):
    """Real Celery workers for the session, laid out as in production: one consuming `bulk` and
    `default`, one consuming only `transactional` (see `transactional_worker`). Yields the
    bulk worker's log."""
    return _workers[0]


@pytest.fixture(scope="session")
def transactional_worker(_workers):
    """The log of the session's dedicated `transactional` worker (started with `worker`)."""
    return _workers[1]


@pytest.fixture(scope="session")
def beat(platform_env):
    """Celery beat for the session: the sweeper every second, scheduled campaigns every 10 s."""
    with celery_beat(platform_env) as (process, log):
        yield log


@pytest.fixture
def smtp_server(platform_env):
    """The session's SMTP server (records by recipient); scripted rules reset after each test."""
    handler = _SMTP_SERVERS[-1].handler
    handler.reset()
    handler.server = _SMTP_SERVERS[-1]  # lets a fault test stop and restart it
    yield handler
    handler.reset()


@pytest.fixture
def dns(app):
    """The session's loopback DNS server, empty for each test (add records with `dns.txt(name, value)`)."""
    from newsletter.services.deliverability import dkim, preflight

    server = _DNS_SERVERS[-1]
    server.records.clear()
    server.queries.clear()
    preflight.forget_dns()
    yield server
    server.records.clear()
    preflight.forget_dns()
    with app.app_context():
        dkim.publish_change()  # the tables are emptied after the test: workers must drop its keys


@pytest.fixture(scope="session")
def outbox_dir(platform_env) -> str:
    return str(Path(platform_env["INSTANCE_PATH"]) / "outbox")


@pytest.fixture(scope="session")
def live_server(app):
    """The app on a real HTTP port (werkzeug, threaded), for the browser tests."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(autouse=True)
def _fresh_limits_for_browsers(request) -> None:
    """A browser test starts with no throttling counters, as a `client` test does: every browser
    signs in from 127.0.0.1, and the login form takes 10 a minute from one address."""
    if "live_server" in request.fixturenames:
        from newsletter.extensions import limiter

        with request.getfixturevalue("app").app_context():
            limiter.reset()


@pytest.fixture
def send_rate(app):
    """Set the cluster-wide rate for one test (the runtime override every worker reads)."""
    from newsletter.services.campaigns.send import limiter

    def set_rate(rate: float | None) -> None:
        with app.app_context():
            limiter().set_rate(rate)

    yield set_rate
    set_rate(None)


@pytest.fixture
def no_verp(app):
    """This process's app without BOUNCE_ADDRESS (the session's workers keep theirs): for checks
    about the From domain's own SPF and return path."""
    saved = app.config.get("BOUNCE_ADDRESS", "")
    app.config["BOUNCE_ADDRESS"] = ""
    yield
    app.config["BOUNCE_ADDRESS"] = saved
