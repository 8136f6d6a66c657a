"""The Celery entry point: `celery -A celery_worker worker` / `beat`.

The Flask app is not named `app` here: `celery -A` would pick `module.app` first.
"""
import os
import sys

from newsletter.metrics import multiproc

if "worker" in sys.argv:
    # Before any task module imports prometheus_client: this node's pool shares one metrics folder.
    multiproc.activate(multiproc.celery_group(sys.argv), fresh=True)

from newsletter import tasks  # noqa: E402,F401  (registers every task)
from newsletter.startup import PREFIX, app_or_exit  # noqa: E402

flask_app = app_or_exit()
celery = flask_app.extensions["celery"]

if "worker" in sys.argv:
    # A worker that cannot reach its database would fail every task: say so once, up front.
    with flask_app.app_context():
        from newsletter.services.health import check_database

        if reason := check_database():
            sys.exit(PREFIX + f"cannot reach the database (check DATABASE_URL): {reason}")

    if flask_app.config["METRICS_PORT"]:
        from celery.signals import worker_ready

        from newsletter.metrics import exposition

        @worker_ready.connect(weak=False)
        def serve_metrics(**_: object) -> None:
            """A worker host without a web process: Prometheus scrapes this (docs/operations.md)."""
            exposition.serve(flask_app.config["METRICS_PORT"], flask_app.config["METRICS_ADDR"])

LOGIN_OPTIONS = ("--basic-auth", "--basic_auth", "--auth")
if "flower" in sys.argv and not (os.environ.get("FLOWER_BASIC_AUTH") or os.environ.get("FLOWER_AUTH")
                                 or any(arg.startswith(LOGIN_OPTIONS) for arg in sys.argv)):
    # Flower shows every task's arguments and can revoke tasks and stop workers: never without a login.
    sys.exit(PREFIX + "Flower needs a login: set FLOWER_BASIC_AUTH=user:password (docs/operations.md, \"Flower\")")
