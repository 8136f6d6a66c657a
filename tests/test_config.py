"""Settings come from the environment; bad values fail with a message naming the variable."""
import os
import secrets

import pytest

from newsletter.config import ROOT, ConfigError, build_config

# one_pass (tests/conftest.py): settings parsed from given environments.
pytestmark = pytest.mark.one_pass


def test_defaults_are_the_embedded_setup(tmp_path):
    config = build_config({"INSTANCE_PATH": str(tmp_path)})
    assert config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'newsletter.db'}"
    assert config["REDIS_URL"] == f"unix://{tmp_path / 'redis.sock'}?db=0"
    assert config["CELERY"]["broker_url"] == f"redis+socket://{tmp_path / 'redis.sock'}"
    assert config["EMBEDDED_REDIS"] and config["EMBEDDED_MAIL_CATCHER"]
    assert (config["MAIL_SERVER"], config["MAIL_PORT"]) == ("127.0.0.1", 1025)
    assert config["OUTBOX_DIR"] == str(tmp_path / "outbox")
    # A development key is generated once and kept, so sessions survive restarts.
    assert config["SECRET_KEY"] == build_config({"INSTANCE_PATH": str(tmp_path)})["SECRET_KEY"]


def test_celery_is_json_only_with_late_acks_and_three_queues(tmp_path):
    celery = build_config({"INSTANCE_PATH": str(tmp_path)})["CELERY"]
    assert celery["accept_content"] == ["json"] and celery["task_serializer"] == "json"
    assert celery["task_acks_late"] and celery["task_reject_on_worker_lost"]
    assert [q.name for q in celery["task_queues"]] == ["default", "transactional", "bulk"]
    assert celery["task_soft_time_limit"] < celery["task_time_limit"]


def test_worker_commits_are_asynchronous_unless_asked(tmp_path):
    # celery_app skips dialect.commit_asynchronously when this is on (the bench's --sync-commit).
    assert build_config({"INSTANCE_PATH": str(tmp_path)})["WORKER_SYNCHRONOUS_COMMIT"] is False
    assert build_config({"INSTANCE_PATH": str(tmp_path), "WORKER_SYNCHRONOUS_COMMIT": "true"})[
        "WORKER_SYNCHRONOUS_COMMIT"] is True


def test_environment_overrides(tmp_path):
    config = build_config({
        "INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": "postgres://u:p@db.internal/news",
        "REDIS_URL": "redis://127.0.0.1:6379/2",
        "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
        "MAIL_SERVER": "smtp.internal", "MAIL_PORT": "2525", "MAIL_USE_TLS": "yes",
        "SEND_RATE": "12.5", "BASE_URL": "https://news.example.com/",
    })
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.internal/news"
    assert config["CELERY"]["broker_url"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert config["CELERY"]["result_backend"] == "redis://127.0.0.1:6379/2"
    assert not config["EMBEDDED_REDIS"] and not config["EMBEDDED_MAIL_CATCHER"]
    assert config["MAIL_PORT"] == 2525 and config["MAIL_USE_TLS"] is True
    assert config["SEND_RATE"] == 12.5 and config["BASE_URL"] == "https://news.example.com"


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config({"INSTANCE_PATH": str(tmp_path), "NEWSLETTER_ENV": "production"})
    config = build_config({"INSTANCE_PATH": str(tmp_path), "NEWSLETTER_ENV": "production",
                           "SECRET_KEY": secrets.token_urlsafe(48)})
    assert config["SESSION_COOKIE_SECURE"] and config["OUTBOX_DIR"] is None


@pytest.mark.parametrize("name, value", [
    ("MAIL_USE_TLS", "maybe"), ("MAIL_PORT", "smtp"), ("SEND_RATE", "-1"), ("NEWSLETTER_ENV", "staging"),
    ("DNS_RESOLVER", "dns.example.com:53"), ("DNS_RESOLVER", "127.0.0.1:99999"), ("DNS_TIMEOUT", "-1"),
    ("WORKER_SYNCHRONOUS_COMMIT", "sometimes"),
    ("FEEDBACK_ID_SENDER", "abc"), ("FEEDBACK_ID_SENDER", "has:colon"), ("FEEDBACK_ID_SENDER", "x" * 16),
])
def test_malformed_values_name_the_variable(tmp_path, name, value):
    with pytest.raises(ConfigError, match=name):
        build_config({"INSTANCE_PATH": str(tmp_path), name: value})


@pytest.mark.parametrize("key, error", [
    ("short-Key-9f3", "at least 32 characters"),
    ("change-me-to-a-long-random-string", "placeholder"),         # .env.example's own value
    ("my-super-secret-production-key-2026!", "placeholder"),
    ("x" * 40, "guessable"),
    ("abcdefghijklmnopqrstuvwxyz0123456789", "guessable"),
    ("Qz8!Qz8!Qz8!Qz8!Qz8!Qz8!Qz8!Qz8!Qz8!", "guessable"),
])
def test_production_refuses_known_short_and_guessable_keys(tmp_path, key, error):
    with pytest.raises(ConfigError, match=error):
        build_config({"INSTANCE_PATH": str(tmp_path), "NEWSLETTER_ENV": "production", "SECRET_KEY": key})


def test_env_example_key_does_not_start_production(tmp_path):
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        build_config({**example, "INSTANCE_PATH": str(tmp_path)})


def test_random_keys_of_every_usual_shape_are_accepted(tmp_path):
    for _ in range(50):
        for key in (secrets.token_urlsafe(48), secrets.token_hex(32), secrets.token_urlsafe(24)):
            build_config({"INSTANCE_PATH": str(tmp_path), "NEWSLETTER_ENV": "production", "SECRET_KEY": key})


def test_domain_throttles_are_checked_at_start_and_normalised(tmp_path):
    config = build_config({"INSTANCE_PATH": str(tmp_path), "DOMAIN_THROTTLES": " Gmail.com=20/s ;outlook.com=600/h"})
    assert (config["DOMAIN_THROTTLES"], config["NOTIFY_POOL"]) == ("gmail.com=20/s, outlook.com=600/h", "default")
    with pytest.raises(ConfigError, match="DOMAIN_THROTTLES: 'gmail.com=20/week'"):
        build_config({"INSTANCE_PATH": str(tmp_path), "DOMAIN_THROTTLES": "gmail.com=20/week"})


def test_base_url_follows_web_port_unless_set(tmp_path):
    assert build_config({"INSTANCE_PATH": str(tmp_path)})["BASE_URL"] == "http://127.0.0.1:5000"
    assert build_config({"INSTANCE_PATH": str(tmp_path), "WEB_PORT": "5090"})["BASE_URL"] == "http://127.0.0.1:5090"
    assert build_config({"INSTANCE_PATH": str(tmp_path), "WEB_PORT": "5090",
                         "BASE_URL": "https://news.example.org/"})["BASE_URL"] == "https://news.example.org"


def test_a_base_url_on_another_local_port_than_web_port_is_warned_about():
    from newsletter.config import base_url_mismatch

    warning = base_url_mismatch("http://127.0.0.1:5000", {"WEB_PORT": "5090"})
    assert warning and "5090" in warning and "port 5000" in warning
    assert base_url_mismatch("http://localhost:5090", {"WEB_PORT": "5090"}) is None
    assert base_url_mismatch("https://news.example.org", {"WEB_PORT": "8000"}) is None  # behind a proxy
    assert base_url_mismatch("http://127.0.0.1:5000", {}) is None  # no serving port known
    assert "80" in base_url_mismatch("http://127.0.0.1", {"WEB_PORT": "5090"})


def test_every_process_warns_at_start_up_about_a_mismatch(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(INSTANCE_PATH=str(tmp_path), WEB_PORT="5090", BASE_URL="http://127.0.0.1:5000",
               NEWSLETTER_ENV="development")
    result = subprocess.run([sys.executable, "-c", "from newsletter import create_app; create_app()"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "BASE_URL is http://127.0.0.1:5000 but the web process serves on port 5090" in result.stderr
def test_deliverability_settings_and_their_defaults(tmp_path):
    config = build_config({"INSTANCE_PATH": str(tmp_path)})
    assert (config["DNS_RESOLVER"], config["DNS_TIMEOUT"], config["FEEDBACK_ID_SENDER"]) == (None, 3.0, "127001")
    config = build_config({"INSTANCE_PATH": str(tmp_path), "DNS_RESOLVER": "[::1]:5353", "DNS_TIMEOUT": "0.5",
                           "BASE_URL": "https://news.example-shop.co.uk/"})
    assert (config["DNS_RESOLVER"], config["DNS_TIMEOUT"], config["FEEDBACK_ID_SENDER"]) == \
        (("::1", 5353), 0.5, "newsexampleshop")
    assert build_config({"INSTANCE_PATH": str(tmp_path), "DNS_RESOLVER": "10.0.0.53"})["DNS_RESOLVER"] == \
        ("10.0.0.53", 53)
    assert build_config({"INSTANCE_PATH": str(tmp_path), "FEEDBACK_ID_SENDER": "acme-news"})["FEEDBACK_ID_SENDER"] \
        == "acme-news"


def test_metrics_settings_are_checked_at_start(tmp_path):
    base = {"INSTANCE_PATH": str(tmp_path)}
    config = build_config(base)
    assert (config["METRICS_ALLOWED_NETWORKS"], config["METRICS_TOKEN"], config["METRICS_PORT"]) == (
        ["127.0.0.0/8", "::1/128"], "", 0)
    assert build_config({**base, "METRICS_ALLOWED_NETWORKS": ""})["METRICS_ALLOWED_NETWORKS"] == []
    assert build_config({**base, "METRICS_ALLOWED_NETWORKS": "10.1.2.3/16, 127.0.0.1"})[
        "METRICS_ALLOWED_NETWORKS"] == ["10.1.0.0/16", "127.0.0.1/32"]
    with pytest.raises(ConfigError, match="METRICS_ALLOWED_NETWORKS"):
        build_config({**base, "METRICS_ALLOWED_NETWORKS": "10.0.0.0/33"})
    with pytest.raises(ConfigError, match="METRICS_TOKEN must be at least 16"):
        build_config({**base, "METRICS_TOKEN": "short"})
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        build_config({**base, "METRICS_PORT": "nine"})


def test_lease_renewals_must_come_well_within_the_lease(tmp_path):
    config = build_config({"INSTANCE_PATH": str(tmp_path)})
    assert (config["LEASE_TTL"], config["LEASE_RENEW_INTERVAL"]) == (10.0, 2.0)
    for ttl, every in (("10", "5"), ("4", "0"), ("0", "1"), ("3", "2")):  # a process would fence itself off
        with pytest.raises(ConfigError, match="LEASE_RENEW_INTERVAL"):
            build_config({"INSTANCE_PATH": str(tmp_path), "LEASE_TTL": ttl, "LEASE_RENEW_INTERVAL": every})
    config = build_config({"INSTANCE_PATH": str(tmp_path), "LEASE_TTL": "3", "LEASE_RENEW_INTERVAL": "1"})
    assert config["LEASE_TTL"] == 3
