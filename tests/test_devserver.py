"""`make run` end to end: the runner brings everything up on the embedded defaults, a test
email goes through the worker into the outbox, and Ctrl-C stops every process."""
import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from newsletter.services import outbox
from tests.support.net import free_port, http_status, wait_for
from tests.support.processes import ROOT, ProcessLog
from tests.support.web import csrf_token

# one_pass (tests/conftest.py): `make run` always runs on its embedded defaults, whatever the environment names.
pytestmark = pytest.mark.one_pass

EXTERNAL = ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MAIL_SERVER",
            "SECRET_KEY", "NEWSLETTER_ENV")


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=10) as response:
            return response.read().decode()

    def post(self, path: str, data: dict) -> str:
        body = urllib.parse.urlencode(data).encode()
        with self.opener.open(self.base + path, data=body, timeout=10) as response:
            return response.read().decode()


def _up(browser: Browser) -> bool:
    try:
        return '"ok"' in browser.get("/healthz")
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_make_run_brings_up_the_platform_and_stops_cleanly():
    instance = Path(tempfile.mkdtemp(prefix="nl-run-"))
    web_port, mail_port, flower_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in EXTERNAL and not k.startswith("FLOWER_")}
    env.update(INSTANCE_PATH=str(instance), WEB_PORT=str(web_port), MAIL_PORT=str(mail_port),
               FLOWER_PORT=str(flower_port))
    runner = subprocess.Popen([sys.executable, "-m", "newsletter.devserver"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ProcessLog(runner)
    browser = Browser(f"http://127.0.0.1:{web_port}")
    try:
        wait_for(lambda: _up(browser) or runner.poll() is not None, 90, 0.3, "the web process")
        assert runner.poll() is None, log.text
        password = re.search(r"admin@example\.com\s+/\s+(\S+)", log.text).group(1)
        assert '"status":"ok"' in browser.get("/readyz").replace(" ", "")

        page = browser.get("/login")
        browser.post("/login", {"email": "admin@example.com", "password": password, "csrf_token": csrf_token(page)})
        dashboard = browser.get("/admin/")
        assert "Dashboard" in dashboard
        browser.post("/admin/test-email", {"to": "newcomer@example.com", "csrf_token": csrf_token(dashboard)})
        wait_for(lambda: "newcomer@example.com" in browser.get("/admin/outbox/"), 60, 0.5,
                 "the test email in the outbox")
        assert "Test email from your newsletter platform" in browser.get("/admin/outbox/")
        # BASE_URL was not set: links in mail point where `make run` serves (WEB_PORT), not :5000.
        [message] = outbox.list_messages(str(instance / "outbox"))
        assert f"http://127.0.0.1:{web_port}" in message.body("plain")
        assert "BASE_URL is" not in log.text  # no mismatch warning

        # Flower runs too, behind the login printed at start.
        flower = re.search(rf"Flower .*http://127\.0\.0\.1:{flower_port}/\s+user (\S+)\s+password (\S+)", log.text)
        assert flower, log.text[-3000:]
        wait_for(lambda: http_status(f"http://127.0.0.1:{flower_port}/") == 401, 60, 0.5, "Flower to answer")
        assert http_status(f"http://127.0.0.1:{flower_port}/", f"{flower.group(1)}:{flower.group(2)}") == 200
    finally:
        runner.send_signal(signal.SIGINT)
        code = runner.wait(timeout=60)
    assert code == 0, log.text[-3000:]
    assert "Stopped." in log.text
    assert not _up(browser)
    assert not (instance / "redis.sock").exists()
    # No process of this run is left behind.
    leftovers = subprocess.run(["pgrep", "-f", str(instance)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], leftovers
