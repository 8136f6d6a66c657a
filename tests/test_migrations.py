"""The schema exists only through migrations; they run to head and agree with the models."""
import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

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
