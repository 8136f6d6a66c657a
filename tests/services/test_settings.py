"""Settings: encryption at rest, validation, environment vs database, and the per-process cache."""
from __future__ import annotations

import time
import uuid

import pytest
import redis
from cryptography.fernet import InvalidToken
from sqlalchemy import select

from newsletter.extensions import db
from newsletter.models.setting import Setting
from newsletter.services import settings, versioned
from newsletter.services.campaigns import send as campaign_send
from newsletter.services.notifications import notifications


@pytest.fixture(autouse=True)
def defaults(app):
    """Leave the environment's values behind, through the service so every cache hears of it."""
    yield
    with app.app_context():
        db.session.rollback()
        settings.save(dict.fromkeys(settings.NAMES), None)


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def test_password_round_trip_is_encrypted_at_rest(ctx):
    token = settings.encrypt("s3cret-pass", "key-one-0123456789")
    assert "s3cret-pass" not in token and settings.decrypt(token, "key-one-0123456789") == "s3cret-pass"
    with pytest.raises(InvalidToken):
        settings.decrypt(token, "key-two-0123456789")

    assert settings.save({"MAIL_USERNAME": "mailer", "MAIL_PASSWORD": "s3cret-pass"}, None) == \
        ["MAIL_PASSWORD", "MAIL_USERNAME"]
    stored = db.session.scalar(select(Setting.value).where(Setting.key == "MAIL_PASSWORD"))
    assert set(stored) == {"encrypted"} and "s3cret-pass" not in str(stored)
    current = settings.effective()
    assert current.smtp.password == "s3cret-pass" and current.smtp.username == "mailer"
    assert "s3cret-pass" not in repr(current.smtp)

    # "" keeps the stored password; CLEAR stores "no password" over the environment's.
    assert settings.save({"MAIL_PASSWORD": ""}, None) == []
    assert settings.smtp().password == "s3cret-pass"
    assert settings.save({"MAIL_PASSWORD": settings.CLEAR}, None) == ["MAIL_PASSWORD"]
    assert settings.smtp().password is None and "MAIL_PASSWORD" in settings.effective().overridden


def test_a_changed_secret_key_is_reported_not_a_crash(ctx, caplog):
    settings.save({"MAIL_USERNAME": "mailer", "MAIL_PASSWORD": "s3cret-pass"}, None)
    saved = ctx.config["SECRET_KEY"]
    ctx.config["SECRET_KEY"] = "another-secret-key-0123456789"
    try:
        current = settings.effective(fresh=True)
        assert current.problems["MAIL_PASSWORD"] == settings.UNDECRYPTABLE
        assert current.smtp.password is None and current.smtp.username == "mailer"
        assert settings.UNDECRYPTABLE in caplog.text
        assert settings.check_smtp() == settings.UNDECRYPTABLE
        # Typing the password again repairs it under the new key.
        assert settings.save({"MAIL_PASSWORD": "s3cret-pass"}, None) == ["MAIL_PASSWORD"]
        assert settings.effective().problems == {} and settings.smtp().password == "s3cret-pass"
    finally:
        ctx.config["SECRET_KEY"] = saved
        settings.effective(fresh=True)


@pytest.mark.parametrize("name, value, message", [
    ("MAIL_SERVER", "smtp example com", "host name"),
    ("MAIL_SERVER", "", "host name"),
    ("MAIL_PORT", "smtp", "whole number"),
    ("MAIL_PORT", "70000", "between 1 and 65535"),
    ("MAIL_TLS", "ssl3", "Choose one of"),
    ("MAIL_DEFAULT_SENDER", "Newsletter", "Enter an address"),
    ("MAIL_DEFAULT_SENDER", "News <news@example.com>\r\nBcc: x@example.com", "one line"),
    ("SEND_RATE", "0", "between 0.01"),
    ("NOTIFY_RATE", "fast", "Enter a number"),
    ("SEND_MAX_ATTEMPTS", "2.5", "whole number"),
    ("SEND_RETRY_BASE", "-1", "between"),
    ("SEND_PAUSE_AFTER_ERRORS", "0", "between 1"),
])
def test_each_field_is_validated(ctx, name, value, message):
    with pytest.raises(settings.SettingsInvalid) as caught:
        settings.save({name: value}, None)
    assert set(caught.value.errors) == {name} and message in str(caught.value.errors[name])
    assert db.session.scalar(select(Setting.key)) is None


def test_every_refused_field_is_named_at_once_and_nothing_is_saved(ctx):
    with pytest.raises(settings.SettingsInvalid) as caught:
        settings.save({"MAIL_PORT": "x", "SEND_RATE": "10", "SEND_RETRY_BASE": "60", "SEND_RETRY_MAX": "30"}, None)
    assert set(caught.value.errors) == {"MAIL_PORT", "SEND_RETRY_MAX"}
    assert caught.value.field == "MAIL_PORT"  # a generic ValidationError handler still points somewhere
    assert settings.get("SEND_RATE") == ctx.config["SEND_RATE"]


def test_environment_default_database_override_and_reset(ctx):
    current = settings.effective()
    assert current.overridden == frozenset()
    assert current["MAIL_PORT"] == ctx.config["MAIL_PORT"] and current["SEND_MAX_ATTEMPTS"] == 4
    assert current["MAIL_TLS"] == "none" and current.smtp == campaign_send.smtp.SmtpSettings.from_config(ctx.config)

    # Posting the whole form unchanged stores nothing: the environment keeps deciding.
    assert settings.save({n: str(current[n] or "") for n in settings.NAMES}, None) == []
    assert db.session.scalar(select(Setting.key)) is None

    assert settings.save({"MAIL_PORT": "2525", "MAIL_TLS": "starttls", "SEND_MAX_ATTEMPTS": "7",
                          "MAIL_DEFAULT_SENDER": "News <News@Example.com>"}, None) == \
        ["MAIL_DEFAULT_SENDER", "MAIL_PORT", "MAIL_TLS", "SEND_MAX_ATTEMPTS"]
    current = settings.effective()
    assert current.overridden == {"MAIL_PORT", "MAIL_TLS", "SEND_MAX_ATTEMPTS", "MAIL_DEFAULT_SENDER"}
    assert (current.smtp.port, current.smtp.use_tls, current.smtp.use_ssl) == (2525, True, False)
    assert settings.get("SEND_MAX_ATTEMPTS") == 7
    assert settings.default_sender() == ("News", "news@example.com")

    assert settings.save({"MAIL_PORT": None, "MAIL_TLS": None}, None) == ["MAIL_PORT", "MAIL_TLS"]
    assert settings.smtp().port == ctx.config["MAIL_PORT"] and not settings.smtp().use_tls
    assert set(db.session.scalars(select(Setting.key))) == {"SEND_MAX_ATTEMPTS", "MAIL_DEFAULT_SENDER"}


def test_rates_saved_set_the_cluster_override_at_once(ctx, app):
    assert settings.save({"SEND_RATE": "250", "NOTIFY_RATE": "20"}, None) == ["NOTIFY_RATE", "SEND_RATE"]
    assert campaign_send.limiter().effective_rate() == 250
    assert notifications.limiter().effective_rate() == 20
    settings.save({"SEND_RATE": None, "NOTIFY_RATE": None}, None)
    assert campaign_send.limiter().effective_rate() == app.config["SEND_RATE"]
    assert notifications.limiter().effective_rate() == app.config["NOTIFY_RATE"]


def test_a_save_by_another_process_is_seen_within_a_second(ctx):
    """Another process's save: a row written behind this process's back, and a new version token."""
    assert settings.get("SEND_RETRY_BASE") == 0.5
    db.session.add(Setting(key="SEND_RETRY_BASE", value=12.0))
    db.session.commit()
    assert settings.get("SEND_RETRY_BASE") == 0.5  # this process has not been told yet
    redis.Redis.from_url(ctx.config["REDIS_URL"]).set(settings.VERSION_KEY, uuid.uuid4().hex)
    deadline = time.monotonic() + versioned.CHECK_EVERY + 0.5
    while settings.get("SEND_RETRY_BASE") != 12.0:
        assert time.monotonic() < deadline, "the new value was not picked up"
        time.sleep(0.05)  # the poll interval of this bounded wait (its deadline is what is tested)


def test_the_hot_path_costs_microseconds(ctx):
    settings.effective()
    calls = 20_000
    started = time.thread_time()  # CPU time: the wall clock counts other processes' turns on the CPU too
    for _ in range(calls):
        settings.get("SEND_PAUSE_AFTER_ERRORS")
        settings.smtp()
    per_call = (time.thread_time() - started) / (2 * calls)
    assert per_call < 20e-6, f"{per_call * 1e6:.1f} µs per lookup"
