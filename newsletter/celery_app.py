"""Bind a Celery app to the Flask app: every task runs inside the Flask app context."""
from __future__ import annotations

from celery import Celery, Task
from celery.signals import worker_process_init
from flask import Flask
from sqlalchemy import event

from .extensions import db


def _asynchronous_commit(dbapi_connection: object, _record: object) -> None:
    """Worker connections do not wait for the WAL flush at COMMIT.

    The send ledger commits once per message; waiting for each fsync would cap a worker at
    the disk's flush rate. A worker crash loses nothing it committed; a PostgreSQL crash can
    lose the last fraction of a second of commits (never corrupts), which the sweeper then
    handles like any lost claim. Web requests keep synchronous commits.
    """
    with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.commit()  # type: ignore[attr-defined]


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app

    def dispose_pool(**_: object) -> None:
        # A forked child must not share the parent's database sockets.
        with app.app_context():
            db.engine.dispose(close=False)
            if db.engine.dialect.name == "postgresql":
                event.listen(db.engine, "connect", _asynchronous_commit)

    worker_process_init.connect(dispose_pool, weak=False, dispatch_uid="newsletter.dispose_pool")
    return celery_app
