"""The Celery entry point: `celery -A celery_worker worker` / `beat`.

The Flask app is not named `app` here: `celery -A` would pick `module.app` first.
"""
import sys

from newsletter import tasks  # noqa: F401  (registers every task)
from newsletter.startup import PREFIX, app_or_exit

flask_app = app_or_exit()
celery = flask_app.extensions["celery"]

if "worker" in sys.argv:
    # A worker that cannot reach its database would fail every task: say so once, up front.
    with flask_app.app_context():
        from newsletter.services.health import check_database

        if reason := check_database():
            sys.exit(PREFIX + f"cannot reach the database (check DATABASE_URL): {reason}")
