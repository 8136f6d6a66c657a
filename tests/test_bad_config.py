"""Misconfiguration ends a process with one line naming what to fix, never a traceback wall."""
import subprocess
import sys

import pytest

from tests.support.net import free_port
from tests.support.processes import BIN, ROOT, flask_cli

# one_pass (tests/conftest.py): each test sets its own broken setting (the unreachable database is
# a PostgreSQL URL in both passes).
pytestmark = pytest.mark.one_pass


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_production_without_secret_key(platform_env):
    env = {**platform_env, "NEWSLETTER_ENV": "production"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    line = one_line_error(result)
    assert line.startswith("newsletter: configuration error: SECRET_KEY must be set")


def test_gunicorn_refuses_to_boot_without_secret_key(platform_env):
    env = {**platform_env, "NEWSLETTER_ENV": "production"}
    env.pop("SECRET_KEY", None)
    result = subprocess.run([str(BIN / "gunicorn"), "--check-config", "wsgi:app"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr + result.stdout


def test_unreachable_database(platform_env):
    env = {**platform_env, "DATABASE_URL": f"postgresql://127.0.0.1:{free_port()}/nowhere"}
    line = one_line_error(flask_cli("db", "upgrade", env=env))
    assert line.startswith("newsletter: cannot reach the database (check DATABASE_URL)")


def test_malformed_database_url(platform_env):
    line = one_line_error(flask_cli("db", "upgrade", env={**platform_env, "DATABASE_URL": "nosuchdb://x"}))
    assert "DATABASE_URL" in line


def test_unreachable_broker(platform_env):
    env = {**platform_env, "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    line = one_line_error(flask_cli("check", env=env))
    assert line.startswith("newsletter: broker is down (redis://127.0.0.1:")


def test_worker_with_unreachable_database(platform_env):
    env = {**platform_env, "DATABASE_URL": f"postgresql://u:secret@127.0.0.1:{free_port()}/nowhere"}
    result = subprocess.run([str(BIN / "celery"), "-A", "celery_worker", "worker", "--pool", "solo"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    line = one_line_error(result)
    assert line.startswith("newsletter: cannot reach the database (check DATABASE_URL)")
    assert "secret" not in line


def test_malformed_setting_names_the_variable(platform_env):
    line = one_line_error(flask_cli("check", env={**platform_env, "MAIL_PORT": "twenty-five"}))
    assert line == "newsletter: configuration error: MAIL_PORT must be a number, got 'twenty-five'"


def test_every_process_says_which_mode_it_runs_and_why(platform_env):
    """Without NEWSLETTER_ENV (FLASK_DEBUG=0 does not choose it) the app runs in development mode,
    and says so loudly; production says so too."""
    env = {**platform_env, "FLASK_DEBUG": "0"}
    env.pop("NEWSLETTER_ENV")
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ("newsletter: DEVELOPMENT mode (NEWSLETTER_ENV is not set, so the default; FLASK_DEBUG=0 does not "
            "choose the mode): session cookies are not Secure") in result.stderr
    env = {**platform_env, "NEWSLETTER_ENV": "production", "SECRET_KEY": "Hk3v9Q2xLm7Rt5Wz8Bc1Nd4Fg6Jp0Ys-_aE"}
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "newsletter: production mode (NEWSLETTER_ENV=production)" in result.stderr
