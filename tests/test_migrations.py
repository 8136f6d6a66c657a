"""The schema exists only through migrations; they run to head and agree with the models."""
import json
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from newsletter.config import database_uri
from newsletter.extensions import db
from tests.conftest import _create_postgres_database, _drop_postgres_database
from tests.support.net import reachable
from tests.support.processes import flask_cli

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")


def upgrade_and_diff(url: str) -> list:
    env = {**os.environ, "DATABASE_URL": url, "NEWSLETTER_ENV": "testing"}
    result = flask_cli("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    import newsletter.models  # noqa: F401  (every table on db.metadata)

    engine = create_engine(database_uri(url))
    try:
        with engine.connect() as connection:
            from newsletter.models.base import include_object

            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object})
            assert context.get_current_revision() is not None
            return compare_metadata(context, db.metadata)
    finally:
        engine.dispose()


def test_sqlite_upgrade_from_empty_to_head_matches_the_models(tmp_path):
    assert upgrade_and_diff(f"sqlite:///{tmp_path / 'fresh.db'}") == []


@pytest.mark.skipif(not reachable(POSTGRES_URL, 5432), reason=f"no PostgreSQL at {POSTGRES_URL}")
def test_postgres_upgrade_from_empty_to_head_matches_the_models():
    url, admin_url = _create_postgres_database(POSTGRES_URL)
    try:
        assert upgrade_and_diff(url) == []
    finally:
        _drop_postgres_database(url, admin_url)


def notifications_through_0008(url: str) -> tuple[list, list]:
    """Upgrade to 0007 and store an API notification; upgrade to head and store a confirmation;
    downgrade to 0007. The rows after the upgrade and after the downgrade."""
    env = {**os.environ, "DATABASE_URL": url, "NEWSLETTER_ENV": "testing"}
    columns = ("request_hash, email, subject, html, text, data, status, attempts, worker, task_id, smtp_message, "
               "created_at, updated_at")
    values = "'', '{}', 'Hi', '', '', '{{}}', '{}', 0, '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP"

    def migrate(*args: str) -> None:
        result = flask_cli("db", *args, env=env)
        assert result.returncode == 0, result.stderr

    engine = create_engine(database_uri(url))
    try:
        migrate("upgrade", "0007")
        with engine.begin() as connection:
            connection.execute(text(f"INSERT INTO notifications ({columns}) "
                                    f"VALUES ({values.format('a@example.org', 'sent')})"))
        migrate("upgrade")
        with engine.begin() as connection:
            upgraded = connection.execute(text("SELECT kind, status, headers FROM notifications")).all()
            connection.execute(text(f"INSERT INTO notifications ({columns}, kind) "
                                    f"VALUES ({values.format('b@example.org', 'queued')}, 'confirmation')"))
        migrate("downgrade", "0007")  # one-off mail had no ledger before: its rows go, the API's stay
        with engine.connect() as connection:
            downgraded = connection.execute(text("SELECT email, status FROM notifications")).all()
    finally:
        engine.dispose()
    return [tuple(row) for row in upgraded], [tuple(row) for row in downgraded]


EXPECTED_0008 = ([("api", "sent", [])], [("a@example.org", "sent")])


def test_sqlite_0008_marks_existing_notifications_api_and_downgrades(tmp_path):
    upgraded, downgraded = notifications_through_0008(f"sqlite:///{tmp_path / 'old.db'}")
    assert ([(k, s, json.loads(h)) for k, s, h in upgraded], downgraded) == EXPECTED_0008


@pytest.mark.skipif(not reachable(POSTGRES_URL, 5432), reason=f"no PostgreSQL at {POSTGRES_URL}")
def test_postgres_0008_marks_existing_notifications_api_and_downgrades():
    url, admin_url = _create_postgres_database(POSTGRES_URL)
    try:
        assert notifications_through_0008(url) == EXPECTED_0008
    finally:
        _drop_postgres_database(url, admin_url)
