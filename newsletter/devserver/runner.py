"""`make run`: migrate, make sure an admin exists, then run the whole platform together.

Starts (as needed) the embedded Redis and the mail catcher in this process, and web
(gunicorn), the workers, beat (Celery) and Flower as children, with the Procfile's layout: one
worker for campaigns and housekeeping (`bulk`, `default`) and one for the transactional
lane alone, so a campaign never delays a password reset. Ctrl-C stops everything.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..config import ROOT, ConfigError, build_config
from .embedded_redis import EmbeddedRedis, EmbeddedRedisError
from .mailcatcher import start_mail_catcher

BIN = Path(sys.executable).parent
COLORS = {"web": 36, "worker": 35, "tx": 32, "beat": 33, "flower": 34}
FLOWER_USER = "admin"
TTY = sys.stdout.isatty()


def paint(text: str, code: int) -> str:
    return f"\033[{code}m{text}\033[0m" if TTY else text


def say(message: str) -> None:
    print(paint(f"==> {message}", 1), flush=True)


def fail(message: str) -> None:
    print(f"newsletter: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def commands(config: dict, web_port: int, flower_port: int = 5555) -> dict[str, list[str]]:
    instance = Path(config["INSTANCE_PATH"])
    celery = [str(BIN / "celery"), "-A", "celery_worker"]
    return {
        # The Procfile's gunicorn.conf.py (its token-redacting access log), named, not left to the cwd.
        "web": [str(BIN / "gunicorn"), "wsgi:app", "--config", str(ROOT / "gunicorn.conf.py"),
                "--bind", f"127.0.0.1:{web_port}",
                "--workers", "2", "--threads", "4", "--access-logfile", "-", "--reload",
                "--control-socket", str(instance / "gunicorn.ctl")],
        "worker": celery + ["worker", "--queues", "bulk,default", "--concurrency", "2",
                            "--loglevel", "INFO", "--hostname", "dev@%h"],
        "tx": celery + ["worker", "--queues", "transactional", "--concurrency", "1",
                        "--loglevel", "INFO", "--hostname", "dev-tx@%h"],
        "beat": celery + ["beat", "--loglevel", "INFO", "--schedule", str(instance / "celerybeat-schedule")],
        # Its login comes from FLOWER_BASIC_AUTH in the environment (flower_login).
        "flower": celery + ["flower", "--address=127.0.0.1", f"--port={flower_port}"],
    }


def flower_login(instance: Path) -> str:
    """FLOWER_BASIC_AUTH if set, else admin:<a password generated once for this checkout>."""
    if os.environ.get("FLOWER_BASIC_AUTH"):
        return os.environ["FLOWER_BASIC_AUTH"]
    path = instance / "flower_password"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return f"{FLOWER_USER}:{path.read_text().strip()}"


def flower_port() -> int:
    """FLOWER_PORT, else 5555, else (5555 taken: another `make run`?) a free port."""
    if os.environ.get("FLOWER_PORT", "").isdigit():
        return int(os.environ["FLOWER_PORT"])
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 5555)) != 0:
            return 5555
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return free.getsockname()[1]


def _pump(name: str, stream) -> None:
    label = paint(f"{name:<6}|", COLORS.get(name, 37))
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{label} {line.decode(errors='replace')}")
        sys.stdout.flush()


def start(name: str, argv: list[str]) -> subprocess.Popen:
    # Own session: Ctrl-C reaches only this runner, which then stops the children in order.
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    threading.Thread(target=_pump, args=(name, process.stdout), daemon=True).start()
    return process


def stop_all(children: dict[str, subprocess.Popen]) -> None:
    for process in children.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in children.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def prepare(env: dict[str, str]) -> None:
    """Migrate and create the first admin, in a fresh process like a release step."""
    result = subprocess.run([str(BIN / "flask"), "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode:
        fail("database migration failed: " + (result.stderr.strip().splitlines() or ["?"])[-1])
    from ..startup import app_or_exit

    app = app_or_exit()
    with app.app_context():
        from ..services.accounts.users import ensure_admin

        password = ensure_admin()
    if password:
        say(f"Created the first admin. Sign in as  admin@example.com  /  {password}")
        say("(change it with: .venv/bin/flask --app wsgi create-admin --email admin@example.com --password ...)")


def main() -> None:
    try:
        config = build_config()
    except ConfigError as exc:
        fail(f"configuration error: {exc}")
    web_port = int(os.environ.get("WEB_PORT", "5000"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())

    redis_server = catcher = None
    children: dict[str, subprocess.Popen] = {}
    try:
        if config["EMBEDDED_REDIS"]:
            say(f"Starting embedded Redis on {config['REDIS_URL']}")
            redis_server = EmbeddedRedis(config["INSTANCE_PATH"]).start()
        if config["EMBEDDED_MAIL_CATCHER"]:
            say(f"Starting the mail catcher on {config['MAIL_SERVER']}:{config['MAIL_PORT']}")
            try:
                catcher = start_mail_catcher(config["OUTBOX_DIR"], config["MAIL_SERVER"], config["MAIL_PORT"])
            except OSError as exc:
                fail(f"cannot listen on {config['MAIL_SERVER']}:{config['MAIL_PORT']} for the mail catcher "
                     f"({exc.strerror or exc}); set MAIL_PORT to a free port")
        prepare(dict(os.environ))
        own_login = bool(os.environ.get("FLOWER_BASIC_AUTH"))
        os.environ["FLOWER_BASIC_AUTH"] = login = flower_login(Path(config["INSTANCE_PATH"]))
        monitor_port = flower_port()
        for name, argv in commands(config, web_port, monitor_port).items():
            children[name] = start(name, argv)
        say(f"Web UI: http://127.0.0.1:{web_port}/   (Ctrl-C stops everything)")
        user, _, password = login.partition(":")
        say(f"Flower (tasks and workers): http://127.0.0.1:{monitor_port}/   "
            + ("login from FLOWER_BASIC_AUTH" if own_login else f"user {user}  password {password}"))
        while not stopping.wait(0.5):
            dead = [name for name, process in children.items() if process.poll() is not None]
            if dead:
                say(f"{', '.join(dead)} exited; stopping the rest")
                break
    except EmbeddedRedisError as exc:
        fail(str(exc))
    finally:
        say("Stopping…")
        stop_all(children)
        if catcher:
            catcher.stop()
        if redis_server:
            redis_server.stop()
        say("Stopped.")
    failed = any(p.returncode not in (0, -signal.SIGTERM) for p in children.values())
    sys.exit(1 if failed and not stopping.is_set() else 0)
