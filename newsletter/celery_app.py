"""Bind a Celery app to the Flask app: every task runs inside the Flask app context."""
from __future__ import annotations

import os

from celery import Celery, Task
from celery.signals import worker_process_init, worker_process_shutdown
from flask import Flask

from .extensions import db
from .metrics import multiproc
from .models import dialect
from .observability import celery_context


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
            # Worker connections do not wait for the WAL flush at COMMIT; web requests keep
            # synchronous commits (dialect.commit_asynchronously says why that is safe).
            if not app.config.get("WORKER_SYNCHRONOUS_COMMIT"):
                dialect.commit_asynchronously(db.engine)

    worker_process_init.connect(dispose_pool, weak=False, dispatch_uid="newsletter.dispose_pool")
    celery_context.connect(app.config["LOG_FORMAT"])
    worker_process_shutdown.connect(lambda **_: multiproc.process_dead(os.getpid()), weak=False,
                                    dispatch_uid="newsletter.metrics_process_dead")
    return celery_app
