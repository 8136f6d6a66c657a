"""Settings read from environment variables, with an embedded default for development.

Nothing set means: SQLite under instance/, an embedded Redis on a unix socket under
instance/ (started by `make run`), and the dev mail catcher on 127.0.0.1:1025.
"""
from __future__ import annotations

import ipaddress
import os
import re
import secrets
import zlib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kombu import Exchange, Queue

from .sending.pools import format_throttles, parse_throttles

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("development", "production", "testing")
QUEUES = ("default", "transactional", "bulk")


class ConfigError(RuntimeError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def feedback_id_sender(env: Mapping[str, str], base_url: str) -> str:
    """FEEDBACK_ID_SENDER, Gmail's SenderId (5-15 letters, digits, `.` `_` `-`); by default from BASE_URL's host."""
    raw = (env.get("FEEDBACK_ID_SENDER") or "").strip()
    if raw:
        if not re.fullmatch(r"[A-Za-z0-9._-]{5,15}", raw):
            raise ConfigError(f"FEEDBACK_ID_SENDER must be 5 to 15 letters, digits, '.', '_' or '-', got {raw!r}")
        return raw
    host = re.sub(r"^[a-z]+://", "", base_url).split("/")[0].split(":")[0]
    return (re.sub(r"[^A-Za-z0-9]", "", host)[:15] or "newsletter").ljust(5, "0")


def dns_resolver(env: Mapping[str, str]) -> tuple[str, int] | None:
    """DNS_RESOLVER "host:port" (an IP; port 53 if left out), or None for the system's resolvers."""
    raw = (env.get("DNS_RESOLVER") or "").strip()
    if not raw:
        return None
    host, _, port = raw.rpartition(":") if raw.count(":") == 1 or raw.startswith("[") else (raw, "", "53")
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
        number = int(port or 53)
    except ValueError:
        raise ConfigError(f"DNS_RESOLVER must be an IP address and port such as 127.0.0.1:53, got {raw!r}") from None
    if not 0 < number < 65536:
        raise ConfigError(f"DNS_RESOLVER's port must be 1-65535, got {raw!r}")
    return host, number


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _number(env: Mapping[str, str], name: str, default: float, kind: type = int) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {raw!r}")
    return value


def _base_url(env: Mapping[str, str]) -> str:
    """BASE_URL, else where `make run` serves: http://127.0.0.1:<WEB_PORT> (5000 by default)."""
    if env.get("BASE_URL"):
        return env["BASE_URL"].strip().rstrip("/")
    port = (env.get("WEB_PORT") or "").strip()
    return f"http://127.0.0.1:{port if port.isdigit() else 5000}"


def base_url_mismatch(base_url: str, env: Mapping[str, str]) -> str | None:
    """A warning when BASE_URL names this machine on another port than the one the web process
    serves on (WEB_PORT): every link in every email would point at the wrong place. A public
    BASE_URL (behind a proxy) is not compared: the proxy maps it."""
    port = (env.get("WEB_PORT") or "").strip()
    if not port.isdigit():
        return None
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
        return None
    try:
        base_port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"BASE_URL {base_url!r} has no valid port"
    if base_port == int(port):
        return None
    return (f"BASE_URL is {base_url} but the web process serves on port {port} (WEB_PORT): links in emails "
            f"(unsubscribe, preferences, confirmations, tracking) will point at port {base_port}. "
            f"Unset BASE_URL to derive it from WEB_PORT, or set it to where subscribers reach this platform.")


def _bounce_address(env: Mapping[str, str]) -> str:
    """BOUNCE_ADDRESS, checked: VERP adds "+<token>" to its local part, so it must not have one."""
    raw = (env.get("BOUNCE_ADDRESS") or "").strip()
    if not raw:
        return ""
    local, at, domain = raw.rpartition("@")
    if not at or not local or not domain or "+" in local or any(c.isspace() or c in "<>,;\"" for c in raw):
        raise ConfigError(f"BOUNCE_ADDRESS must be a plain address without '+' (bounces@example.org), got {raw!r}")
    return raw.lower()


def _domain_throttles(env: Mapping[str, str]) -> str:
    """DOMAIN_THROTTLES, checked now (a typo would otherwise lift a limit silently)."""
    raw = env.get("DOMAIN_THROTTLES") or ""
    try:
        return format_throttles(parse_throttles(raw))
    except ValueError as exc:
        raise ConfigError(f"DOMAIN_THROTTLES: {exc}") from None


def _mailbox_url(env: Mapping[str, str]) -> str:
    """BOUNCE_MAILBOX_URL, checked now (services/deliverability/imap.py reads it)."""
    raw = (env.get("BOUNCE_MAILBOX_URL") or "").strip()
    if not raw:
        return ""
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ConfigError("BOUNCE_MAILBOX_URL has a port that is not a number") from None
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise ConfigError("BOUNCE_MAILBOX_URL must look like imap://user:password@host:port/INBOX "
                          f"(imaps:// for TLS), got {parts.scheme or 'no'} scheme")
    return raw


def _tick(task: str, interval: float) -> dict:
    """A beat entry whose message expires after one interval (the next tick does its work)."""
    return {"task": task, "schedule": interval, "options": {"expires": interval}}


def _bounce_polls(env: Mapping[str, str]) -> dict[str, dict]:
    """Beat entries polling the bounce mailbox: BOUNCE_POLL_PARALLEL pollers, each taking the
    messages whose UID % parts == its part. A no-op without BOUNCE_MAILBOX_URL; a tick that
    waited longer than a period is dropped."""
    interval = _number(env, "BOUNCE_POLL_INTERVAL", 60.0, float)
    parts = max(1, _number(env, "BOUNCE_POLL_PARALLEL", 2))
    return {f"poll-bounce-mailbox-{part}": {**_tick("newsletter.tasks.bounces.poll_mailbox", interval),
                                            "args": [part, parts]}
            for part in range(parts)}


def _networks(env: Mapping[str, str], name: str) -> list[str]:
    """A comma-separated list of IP networks (`10.1.2.0/24`, `127.0.0.1`, `fd00::/8`), checked now."""
    found = []
    for part in (env.get(name) or "").split(","):
        if part.strip():
            try:
                found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"{name} must list IP networks such as 10.0.0.0/8, got {part.strip()!r}") from None
    return found


LOG_FORMATS = ("text", "json")


def log_format(env: Mapping[str, str]) -> str:
    """LOG_FORMAT: "text" (the default, what `make run` shows) or "json" (one object a line)."""
    raw = (env.get("LOG_FORMAT") or "text").strip().lower()
    if raw not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be text or json, got {env.get('LOG_FORMAT')!r}")
    return raw


def _sample_rate(env: Mapping[str, str], name: str) -> float:
    rate = _number(env, name, 0.0, float)
    if rate > 1:
        raise ConfigError(f"{name} must be between 0 and 1, got {env.get(name)!r}")
    return rate


def _metrics_networks(env: Mapping[str, str]) -> list[str]:
    """METRICS_ALLOWED_NETWORKS: loopback when unset; set but empty: none (METRICS_TOKEN only)."""
    if env.get("METRICS_ALLOWED_NETWORKS") is None:
        return ["127.0.0.0/8", "::1/128"]
    return _networks(env, "METRICS_ALLOWED_NETWORKS")


def _metrics_token(env: Mapping[str, str]) -> str:
    token = (env.get("METRICS_TOKEN") or "").strip()
    if token and len(token) < 16:
        raise ConfigError("METRICS_TOKEN must be at least 16 characters (a bearer token for GET /metrics)")
    return token


def _pattern(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name) or default
    try:
        re.compile(raw)
    except re.error as exc:
        raise ConfigError(f"{name} must be a regular expression ({exc}), got {raw!r}") from None
    return raw


def _ec_public_key(env: Mapping[str, str], name: str) -> str:
    """A base64 DER (or PEM) ECDSA P-256 public key, checked now: a wrong one would refuse every event."""
    raw = (env.get(name) or "").strip()
    if raw:
        import base64
        import binascii

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        try:
            key = (serialization.load_pem_public_key(raw.encode()) if raw.startswith("-----BEGIN")
                   else serialization.load_der_public_key(base64.b64decode(raw, validate=True)))
        except (ValueError, binascii.Error, TypeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ConfigError(f"{name} must be the ECDSA P-256 public key SendGrid shows (base64), got {raw[:20]!r}…")
    return raw


def database_uri(url: str) -> str:
    """Use the psycopg 3 driver for PostgreSQL URLs however they are spelled."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def engine_options(env: Mapping[str, str]) -> dict[str, Any]:
    """SQLAlchemy's engine options (each new PostgreSQL session also gets dialect.server_session).

    `hide_parameters`: a database error's message (logged, and in tracebacks) never carries the
    statement's values: they are addresses, names, tokens and password hashes.
    """
    return {"pool_pre_ping": True, "hide_parameters": True}


def celery_redis_url(redis_url: str) -> str:
    """Celery/kombu spell a unix socket `redis+socket://`; redis-py spells it `unix://`."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://"):].split("?")[0]
    return redis_url


def limiter_storage_url(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "redis+unix://" + redis_url[len("unix://"):]
    return redis_url


# Words of the placeholders people copy from examples (.env.example, tutorials) instead of a key.
# Whole words only: a random key can hold "todo" by chance, never "-todo-".
_PLACEHOLDER_WORDS = frozenset({"change", "changeme", "replace", "example", "placeholder", "secret", "secretkey",
                                "password", "insecure", "default", "development", "test", "your",
                                "yourkey", "todo", "fixme"})
MIN_SECRET_KEY = 32
GENERATE_KEY = "python -c 'import secrets; print(secrets.token_urlsafe(48))'"


def check_secret_key(key: str) -> None:
    """Refuse a production SECRET_KEY that is missing, short, a known placeholder or guessable:
    it signs sessions and every link in every email, so whoever guesses it can forge both."""
    if len(key) < MIN_SECRET_KEY:
        raise ConfigError(f"SECRET_KEY must be set to a random string of at least {MIN_SECRET_KEY} characters "
                          f"in production (generate one: {GENERATE_KEY})")
    if _PLACEHOLDER_WORDS.intersection(re.split(r"[^a-z0-9]+", key.lower())):
        raise ConfigError(f"SECRET_KEY is a placeholder, not a secret: generate one with {GENERATE_KEY}")
    # Random text barely compresses; a repeated or patterned key ("abcabc…", "x" * 40) does.
    packed = len(zlib.compress(key.encode(), 9)) - 8  # zlib's header and checksum
    steps = sum(1 for a, b in zip(key, key[1:], strict=False) if abs(ord(b) - ord(a)) <= 1)  # "abcd…", "1234…"
    if len(set(key)) < 8 or packed < len(key.encode()) * 0.6 or steps > len(key) * 0.7:
        raise ConfigError(f"SECRET_KEY looks guessable (too few distinct characters or a repeating pattern): "
                          f"generate one with {GENERATE_KEY}")


def mode_reason(env: Mapping[str, str]) -> str:
    """Why this process runs in the mode it does, for the start-up line."""
    if env.get("NEWSLETTER_ENV", "").strip():
        return f"NEWSLETTER_ENV={env['NEWSLETTER_ENV'].strip()}"
    debug = env.get("FLASK_DEBUG", "").strip()
    hint = f"; FLASK_DEBUG={debug} does not choose the mode" if debug else ""
    return f"NEWSLETTER_ENV is not set, so the default{hint}"


def dev_secret_key(instance: Path) -> str:
    """A per-checkout random key so development sessions survive restarts."""
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _lease_settings(env: Mapping[str, str]) -> dict[str, float]:
    """LEASE_TTL and LEASE_RENEW_INTERVAL, checked: a worker fences itself off after TTL / 2
    without a renewal, so renewals must come more often than that or a healthy worker stalls."""
    ttl = _number(env, "LEASE_TTL", 10.0, float)
    every = _number(env, "LEASE_RENEW_INTERVAL", 2.0, float)
    if ttl <= 0 or not 0 < every < ttl / 2:
        raise ConfigError(f"LEASE_RENEW_INTERVAL ({every:g}) must be above 0 and below half of LEASE_TTL ({ttl:g})")
    return {"LEASE_TTL": ttl, "LEASE_RENEW_INTERVAL": every}


def celery_settings(broker_url: str, result_backend: str, env: Mapping[str, str]) -> dict:
    visibility_timeout = _number(env, "BROKER_VISIBILITY_TIMEOUT", 3600)
    exchange = Exchange("newsletter", type="direct")
    return {
        "broker_url": broker_url,
        "result_backend": result_backend,
        # JSON only: a pickle payload from a compromised broker must never execute.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        # At-least-once delivery; every task is written to be safe to run twice.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": _number(env, "WORKER_PREFETCH_MULTIPLIER", 4),
        "task_soft_time_limit": _number(env, "TASK_SOFT_TIME_LIMIT", 300),
        "task_time_limit": _number(env, "TASK_TIME_LIMIT", 360),
        "worker_max_tasks_per_child": _number(env, "WORKER_MAX_TASKS_PER_CHILD", 10000),
        "result_expires": _number(env, "RESULT_EXPIRES", 86400),
        # Results only where someone reads them (the health ping): one stored result per
        # notification, send batch or beat tick would grow Redis for a day (the soak bench).
        # Chords still work: the Redis backend joins their parts in a list of its own.
        "task_ignore_result": True,
        "task_default_queue": "default",
        "task_default_exchange": "newsletter",
        "task_default_routing_key": "default",
        "task_queues": [Queue(name, exchange, routing_key=name) for name in QUEUES],
        "task_routes": {
            "newsletter.tasks.email.*": {"queue": "transactional", "routing_key": "transactional"},
            "newsletter.tasks.notifications.send_notification": {"queue": "transactional",
                                                                  "routing_key": "transactional"},
            "newsletter.tasks.notifications.send_notifications": {"queue": "transactional",
                                                                   "routing_key": "transactional"},
            "newsletter.tasks.bulk.*": {"queue": "bulk", "routing_key": "bulk"},
            # The automation runner's tick runs on the transactional worker, whose processes a
            # campaign never occupies (on the bulk worker it waited for a free process until the
            # campaign ended). A run is budgeted and short, so a confirmation waits at most one run
            # for that process (README "Automations": the trade-off).
            "newsletter.tasks.automations.run": {"queue": "transactional", "routing_key": "transactional"},
        },
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": _number(env, "BROKER_CONNECTION_TIMEOUT", 4),
        "broker_transport_options": {"visibility_timeout": visibility_timeout},
        "result_backend_transport_options": {"visibility_timeout": visibility_timeout},
        "redis_socket_timeout": 10,
        "redis_socket_connect_timeout": 4,
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        # Every tick expires after its own interval: a tick that waited that long in the default
        # queue (a busy or loaded bulk worker) is dropped, the next one does its work. Without it
        # the housekeeping ticks piled up (thousands in the automation bench at load 20, minutes
        # deep) and the automation runs, which did expire, never reached a worker.
        "beat_schedule": {
            "sweep-deliveries": _tick("newsletter.tasks.campaigns.sweep", _number(env, "SWEEP_INTERVAL", 15.0, float)),
            "start-scheduled-campaigns": _tick("newsletter.tasks.campaigns.start_scheduled",
                                               _number(env, "SCHEDULER_INTERVAL", 10.0, float)),
            # A/B tests whose wait is over: the winner goes to the rest (read from the database).
            "decide-ab-tests": _tick("newsletter.tasks.campaigns.decide_ab_tests",
                                     _number(env, "SCHEDULER_INTERVAL", 10.0, float)),
            "sweep-notifications": _tick("newsletter.tasks.notifications.sweep",
                                         _number(env, "SWEEP_INTERVAL", 15.0, float)),
            "deliver-webhooks": _tick("newsletter.tasks.webhooks.deliver_due",
                                      _number(env, "WEBHOOK_POLL_INTERVAL", 2.0, float)),
            # Opens and clicks buffered in Redis, counted in batches: visible within seconds.
            "flush-engagement": _tick("newsletter.tasks.engagement.flush_events",
                                      _number(env, "ENGAGEMENT_FLUSH_INTERVAL", 2.0, float)),
            # Automations run from the database: due steps are found by beat, never by countdowns.
            "run-automations": _tick("newsletter.tasks.automations.run",
                                     _number(env, "AUTOMATION_INTERVAL", 5.0, float)),
            "enrol-automation-dates": _tick("newsletter.tasks.automations.enrol_dates", 3600.0),
            **_bounce_polls(env),
        },
        "timezone": "UTC",
    }


def build_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read every setting from `env` (os.environ by default) into a Flask config dict."""
    env = os.environ if env is None else env
    mode = env.get("NEWSLETTER_ENV", "development").strip().lower() or "development"
    if mode not in ENVIRONMENTS:
        raise ConfigError(f"NEWSLETTER_ENV must be one of {', '.join(ENVIRONMENTS)}, got {mode!r}")
    production = mode == "production"
    instance = Path(env.get("INSTANCE_PATH") or ROOT / "instance").resolve()

    secret_key = env.get("SECRET_KEY", "")
    if production:
        check_secret_key(secret_key)
    if not secret_key:
        secret_key = dev_secret_key(instance)

    redis_url = env.get("REDIS_URL") or f"unix://{instance / 'redis.sock'}?db=0"
    # Celery itself reads CELERY_BROKER_URL / CELERY_RESULT_BACKEND from the environment at
    # run time, ahead of this config; using the same names keeps the two in agreement.
    broker_url = env.get("CELERY_BROKER_URL") or celery_redis_url(redis_url)
    result_backend = env.get("CELERY_RESULT_BACKEND") or celery_redis_url(redis_url)
    mail_ssl = _bool(env, "MAIL_USE_SSL", False)

    return {
        "ENV_NAME": mode,
        "ENV_REASON": mode_reason(env),
        "TESTING": mode == "testing",
        "INSTANCE_PATH": str(instance),
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_uri(
            env.get("DATABASE_URL") or f"sqlite:///{instance / 'newsletter.db'}"
        ),
        "REDIS_URL": redis_url,
        "EMBEDDED_REDIS": not env.get("REDIS_URL"),
        "CELERY": celery_settings(broker_url, result_backend, env),
        "MAIL_SERVER": env.get("MAIL_SERVER") or "127.0.0.1",
        "MAIL_PORT": _number(env, "MAIL_PORT", 465 if mail_ssl else 1025),
        "MAIL_USE_TLS": _bool(env, "MAIL_USE_TLS", False),
        "MAIL_USE_SSL": mail_ssl,
        "MAIL_USERNAME": env.get("MAIL_USERNAME") or None,
        "MAIL_PASSWORD": env.get("MAIL_PASSWORD") or None,
        "MAIL_DEFAULT_SENDER": env.get("MAIL_DEFAULT_SENDER") or "Newsletter <newsletter@localhost>",
        "MAIL_TIMEOUT": _number(env, "MAIL_TIMEOUT", 10.0, float),
        # Flask-Mail suppresses sending whenever TESTING is on; our tests use a real SMTP server.
        "MAIL_SUPPRESS_SEND": False,
        "EMBEDDED_MAIL_CATCHER": not env.get("MAIL_SERVER") and not production,
        "BASE_URL": _base_url(env),
        "SEND_RATE": _number(env, "SEND_RATE", 100.0, float),
        # The send pipeline (README: "Sending campaigns").
        "SEND_PER_HOUR": _number(env, "SEND_PER_HOUR", 0),
        "SEND_PER_DAY": _number(env, "SEND_PER_DAY", 0),
        "SEND_BATCH_SIZE": _number(env, "SEND_BATCH_SIZE", 400),
        # SMTP sessions a worker process keeps open and sends on side by side (smtp.Sessions).
        "SEND_SESSIONS": max(1, _number(env, "SEND_SESSIONS", 16)),
        "SEND_WINDOW": _number(env, "SEND_WINDOW", 5000),
        # Recipients frozen before the first window goes out (a small one: the first email waits for it).
        "SEND_FIRST_WINDOW": _number(env, "SEND_FIRST_WINDOW", 1000),
        "SEND_MAX_ATTEMPTS": _number(env, "SEND_MAX_ATTEMPTS", 5),
        "SEND_RETRY_BASE": _number(env, "SEND_RETRY_BASE", 30.0, float),
        "SEND_RETRY_MAX": _number(env, "SEND_RETRY_MAX", 1800.0, float),
        "SEND_PAUSE_AFTER_ERRORS": _number(env, "SEND_PAUSE_AFTER_ERRORS", 50),
        "SEND_CLAIM_TIMEOUT": _number(env, "SEND_CLAIM_TIMEOUT", 300.0, float),
        # Worker commits wait for the WAL flush (bench/README "Send path round 3": the trade-off).
        "WORKER_SYNCHRONOUS_COMMIT": _bool(env, "WORKER_SYNCHRONOUS_COMMIT", False),
        "SEND_QUEUED_TIMEOUT": _number(env, "SEND_QUEUED_TIMEOUT", 900.0, float),
        # Automations (services/automations/runner.py): enrollments per transaction, emails
        # queued per run (the transactional lane stays quick for confirmations), seconds per run.
        "AUTOMATION_BATCH_SIZE": _number(env, "AUTOMATION_BATCH_SIZE", 500),
        "AUTOMATION_SENDS_PER_RUN": _number(env, "AUTOMATION_SENDS_PER_RUN", 500),
        "AUTOMATION_INTERVAL": _number(env, "AUTOMATION_INTERVAL", 5.0, float),
        # The share of NOTIFY_RATE a run may fill with automation email (the rest stays for
        # confirmations and API notifications on the same lane).
        "AUTOMATION_NOTIFY_SHARE": _number(env, "AUTOMATION_NOTIFY_SHARE", 0.8, float),
        "AUTOMATION_RUN_SECONDS": _number(env, "AUTOMATION_RUN_SECONDS", 20.0, float),
        # Automation emails per transactional task: one broker message and task start for a few
        # sends, while a confirmation queued behind a chunk waits for at most this many.
        "AUTOMATION_SEND_CHUNK": _number(env, "AUTOMATION_SEND_CHUNK", 20),
        "AUTOMATION_INGEST_BATCH": _number(env, "AUTOMATION_INGEST_BATCH", 5000),
        "AUTOMATION_INGEST_MAX": _number(env, "AUTOMATION_INGEST_MAX", 200000),
        "SWEEP_INTERVAL": _number(env, "SWEEP_INTERVAL", 15.0, float),
        # Worker liveness (services/delivery/leases.py): a dead worker's claims are recovered
        # within LEASE_TTL + SWEEP_INTERVAL instead of SEND_CLAIM_TIMEOUT.
        **_lease_settings(env),
        # Transactional notifications (README: "Notifications"): their own rate, never the campaigns'.
        "NOTIFY_RATE": _number(env, "NOTIFY_RATE", 50.0, float),
        # Sending servers (README: "Sending servers"): the notifications' pool, and per-domain limits
        # such as "gmail.com=20/s, outlook.com=600/h" (checked when the settings are read).
        "NOTIFY_POOL": (env.get("NOTIFY_POOL") or "default").strip().lower(),
        "DOMAIN_THROTTLES": _domain_throttles(env),
        # Outgoing webhooks (README: "Webhooks").
        "WEBHOOK_TIMEOUT": _number(env, "WEBHOOK_TIMEOUT", 5.0, float),
        "WEBHOOK_MAX_ATTEMPTS": _number(env, "WEBHOOK_MAX_ATTEMPTS", 8),
        "WEBHOOK_RETRY_BASE": _number(env, "WEBHOOK_RETRY_BASE", 30.0, float),
        # Internal receivers an operator trusts; every other private/loopback/metadata address is refused.
        "WEBHOOK_ALLOWED_NETWORKS": _networks(env, "WEBHOOK_ALLOWED_NETWORKS"),
        # Engagement tracking (README: "Opens and clicks"): new campaigns' default mode.
        "TRACKING_DEFAULT": env.get("TRACKING_DEFAULT") or "anonymous",
        "LIST_UNSUBSCRIBE_MAILTO": env.get("LIST_UNSUBSCRIBE_MAILTO") or "",
        # Bounces and complaints (docs/deliverability.md): the VERP return path's base address,
        # and the soft-bounce rule (LIMIT soft bounces within the last DELIVERIES deliveries or DAYS days).
        "BOUNCE_ADDRESS": _bounce_address(env),
        "BOUNCE_SOFT_LIMIT": max(1, _number(env, "BOUNCE_SOFT_LIMIT", 3)),
        "BOUNCE_SOFT_DELIVERIES": max(1, _number(env, "BOUNCE_SOFT_DELIVERIES", 5)),
        "BOUNCE_SOFT_DAYS": max(1, _number(env, "BOUNCE_SOFT_DAYS", 30)),
        # Deliverability (docs/deliverability.md): Gmail's Feedback-ID sender, the pre-flight's DNS.
        "FEEDBACK_ID_SENDER": feedback_id_sender(env, _base_url(env)),
        "DNS_RESOLVER": dns_resolver(env),
        "DNS_TIMEOUT": _number(env, "DNS_TIMEOUT", 3.0, float),
        "OUTBOX_DIR": None if production else str(instance / "outbox"),
        "RATELIMIT_STORAGE_URI": limiter_storage_url(redis_url),
        "RATELIMIT_HEADERS_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": production,
        "REMEMBER_COOKIE_SECURE": production,
        # Reverse proxies in front of gunicorn whose X-Forwarded-* headers are trusted (0: none).
        "TRUSTED_PROXIES": _number(env, "TRUSTED_PROXIES", 0),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # "Keep me signed in" lasts this long (Flask-Login's default is a year); signing out ends it at once.
        "REMEMBER_COOKIE_DURATION": timedelta(days=_number(env, "REMEMBER_COOKIE_DAYS", 14)),
        "MAX_CONTENT_LENGTH": _number(env, "MAX_UPLOAD_MB", 200) * 1024 * 1024,
        "MAX_BODY_KB": _number(env, "MAX_BODY_KB", 1024),  # every route but uploads (web/body_limits.py)
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(env),
        # Provider bounce/complaint webhooks (docs/deliverability.md, "Provider webhooks").
        "SES_SNS_CERT_URL_PATTERN": _pattern(env, "SES_SNS_CERT_URL_PATTERN",
                                             r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"),
        "SES_SNS_TOPIC_ARNS": [arn.strip() for arn in (env.get("SES_SNS_TOPIC_ARNS") or "").split(",") if arn.strip()],
        "SES_SNS_CA_FILE": env.get("SES_SNS_CA_FILE") or "",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": _ec_public_key(env, "SENDGRID_WEBHOOK_PUBLIC_KEY"),
        "MAILGUN_WEBHOOK_SIGNING_KEY": env.get("MAILGUN_WEBHOOK_SIGNING_KEY") or "",
        "POSTMARK_WEBHOOK_USER": env.get("POSTMARK_WEBHOOK_USER") or "",
        "POSTMARK_WEBHOOK_PASSWORD": env.get("POSTMARK_WEBHOOK_PASSWORD") or "",
        "POSTMARK_WEBHOOK_IPS": _networks(env, "POSTMARK_WEBHOOK_IPS"),
        "PROVIDER_WEBHOOK_MAX_AGE": _number(env, "PROVIDER_WEBHOOK_MAX_AGE", 300.0, float),
        # Refused provider webhook requests (bad signature, credentials, body) one address may make
        # before it gets 429s; accepted ones never count (a provider's burst after a big campaign).
        "PROVIDER_WEBHOOK_REFUSED_LIMIT": env.get("PROVIDER_WEBHOOK_REFUSED_LIMIT", "60 per minute"),
        # The bounce mailbox (docs/deliverability.md "Bounce mailbox"): polled by beat when set.
        "BOUNCE_MAILBOX_URL": _mailbox_url(env),
        "BOUNCE_POLL_INTERVAL": _number(env, "BOUNCE_POLL_INTERVAL", 60.0, float),
        "BOUNCE_POLL_PARALLEL": max(1, _number(env, "BOUNCE_POLL_PARALLEL", 2)),
        # Operations (docs/operations.md): the log format, and error reports to Sentry when a DSN is set.
        "LOG_FORMAT": log_format(env),
        "SENTRY_DSN": (env.get("SENTRY_DSN") or "").strip(),
        "SENTRY_ENVIRONMENT": (env.get("SENTRY_ENVIRONMENT") or "").strip() or mode,
        "SENTRY_TRACES_SAMPLE_RATE": _sample_rate(env, "SENTRY_TRACES_SAMPLE_RATE"),


        # Prometheus (docs/operations.md): who may read GET /metrics, the worker's own exporter.
        "METRICS_ALLOWED_NETWORKS": _metrics_networks(env),
        "METRICS_TOKEN": _metrics_token(env),
        "METRICS_PORT": _number(env, "METRICS_PORT", 0),
        "METRICS_ADDR": (env.get("METRICS_ADDR") or "127.0.0.1").strip(),
        "METRICS_CACHE_SECONDS": _number(env, "METRICS_CACHE_SECONDS", 5.0, float),
    }
