"""The newsletter platform: `create_app` builds the Flask app and binds Celery to it."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .celery_app import celery_init_app
from .config import ROOT, base_url_mismatch, build_config
from .extensions import csrf, db, limiter, login, mail, migrate
from .models import dialect
from .observability import register as register_observability
from .redaction import RedactFilter


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    config = build_config()
    if test_config:
        config.update(test_config)
    register_observability(config)  # the log format and Sentry, before anything logs or fails
    app = Flask(
        __name__,
        instance_path=config["INSTANCE_PATH"],
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.from_mapping(config)
    app.logger.addFilter(RedactFilter())  # "Exception on /unsubscribe/<token>" must not log the token
    if mismatch := base_url_mismatch(app.config["BASE_URL"], os.environ):
        app.logger.warning("newsletter: %s", mismatch)  # every process (web, worker, beat) says it at start
    register_tracking(app)
    register_proxy(app)
    register_extensions(app)
    register_i18n(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    celery_init_app(app)
    return app


def register_tracking(app: Flask) -> None:
    """The pixel and the redirect skip Flask's request machinery (web/public/tracking.py); inside
    ProxyFix, which `register_proxy` wraps around it, so they see the real client."""
    from .web.public import tracking

    tracking.register(app)


def register_proxy(app: Flask) -> None:
    """Trust X-Forwarded-For/-Proto/-Host from exactly TRUSTED_PROXIES hops (0: none), so per-IP
    limits see the real client behind the reverse proxy and HSTS sees HTTPS. Trusting a hop that
    is not there would let any client choose its own IP."""
    hops = app.config["TRUSTED_PROXIES"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    login.init_app(app)
    login.login_view = "auth.login"
    login.login_message_category = "info"
    csrf.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)
    from . import models  # noqa: F401  (registers the tables on db.metadata)

    @login.user_loader
    def load_user(session_id: str) -> models.User | None:
        ident, _, version = session_id.partition(".")
        if not (ident.isdigit() and version.isdigit()):
            return None  # a cookie from before session versions: sign in again
        user = db.session.get(models.User, int(ident))
        return user if user is not None and user.session_version == int(version) else None


# Web, worker and beat share one SQLite file in development; every engine gets its settings.
event.listen(Engine, "connect", dialect.sqlite_pragmas)
event.listen(Engine, "connect", dialect.server_session)


def register_i18n(app: Flask) -> None:
    """Flask-Babel: pages and system mail in the reader's language (web/i18n.py)."""
    from .web import i18n

    i18n.register(app)


def register_blueprints(app: Flask) -> None:
    from .web import admin, api, auth, body_limits, headers, health, inbound, input_guard, metrics, public, request_id
    from .web.admin import audit

    for bp in (health.bp, metrics.bp, auth.bp, public.bp, public.tracking_bp, inbound.bp, *admin.BLUEPRINTS):
        app.register_blueprint(bp)
    body_limits.register(app)  # puts its hook first: CSRF and the limiter read the form in earlier hooks
    app.before_request(audit.remember_actor)  # before the API's key check, which `audit.record` reads later
    api.register(app)
    input_guard.register(app)  # after the API's key check: an unknown caller gets its 401 first
    headers.register(app)
    request_id.register(app)  # puts its hook before body_limits': a refused request still has its id


def register_errorhandlers(app: Flask) -> None:
    from .web import errors

    errors.register(app)


def register_commands(app: Flask) -> None:
    from .cli import register

    register(app)
