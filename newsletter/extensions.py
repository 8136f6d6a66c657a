"""Unbound extension objects; `create_app` binds them to an application."""
from __future__ import annotations

import smtplib
import ssl
from typing import TYPE_CHECKING, Any, ClassVar

import flask_mail
from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import DeclarativeBase

# Stable constraint names so Alembic migrations behave the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Every model maps one table (none maps a join or a select), so `Model.__table__` is a
    # Table, with .insert(), .update() and .c, rather than DeclarativeBase's wider FromClause.
    __table__: ClassVar[Table]


class _TimeoutConnection(flask_mail.Connection):
    """Flask-Mail opens SMTP with no timeout; a stuck server must not hang a worker. With
    `smtp` (a sending.smtp.SmtpSettings: the Settings page's values) it uses those instead of
    the MAIL_* config Flask-Mail read at start-up."""

    def __init__(self, mail: flask_mail.Mail, smtp: Any = None) -> None:
        super().__init__(mail)
        self.smtp = smtp

    def configure_host(self) -> smtplib.SMTP:
        s, m = self.smtp, self.mail
        server, port = (s.host, s.port) if s else (m.server, m.port)
        use_ssl, use_tls = (s.use_ssl, s.use_tls) if s else (m.use_ssl, m.use_tls)
        username, password = (s.username, s.password) if s else (m.username, m.password)
        timeout = s.timeout if s else current_app.config.get("MAIL_TIMEOUT", 10.0)
        host: smtplib.SMTP
        if use_ssl:
            host = smtplib.SMTP_SSL(server, port, timeout=timeout, context=ssl.create_default_context())
        else:
            host = smtplib.SMTP(server, port, timeout=timeout)
        if use_tls:
            host.starttls(context=ssl.create_default_context())
        if username and password:
            host.login(username, password)
        return host


class Mail(flask_mail.Mail):
    def connect(self, smtp: Any = None) -> flask_mail.Connection:
        app = getattr(self, "app", None) or current_app
        return _TimeoutConnection(app.extensions["mail"], smtp)

    def send(self, message: flask_mail.Message, smtp: Any = None) -> None:
        """Send through `smtp` (SmtpSettings) when given, else the MAIL_* config."""
        with self.connect(smtp) as connection:
            message.send(connection)


db = SQLAlchemy(model_class=Base)
# The models' base class. db.Model is built at run time (Base plus Flask-SQLAlchemy's table and
# bind handling), and a type checker cannot follow a base class read off an object
# (python/mypy#8603); it checks the models against Base, which holds everything typed.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate()
login = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
mail = Mail()
