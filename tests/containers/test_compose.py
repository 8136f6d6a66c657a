"""The compose stack end to end (opt-in: CONTAINERS=1, or `make test-containers`).

Builds the images from Debian packages (deploy/containers/build-images.sh; cached layers make a
rebuild quick), brings deploy/containers/compose.yaml up with podman-compose on loopback ports of
its own, waits for every health check, makes an admin and an API key with the CLI inside the web
container, and sends a campaign through the proxy's API to an SMTP server in this process: every
recipient must get exactly one message. Then everything, volumes included, is taken down.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests

from tests.support.net import free_port, wait_for
from tests.support.smtp import RecordingSmtpServer

pytestmark = [
    pytest.mark.skipif(os.environ.get("CONTAINERS") != "1", reason="container tests are opt-in: CONTAINERS=1"),
    pytest.mark.slow,
    pytest.mark.timeout(3600),
]

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "deploy" / "containers"
COMPOSE = HERE / "compose.yaml"
RECIPIENTS = 40
CHECKED = ("postgres", "redis", "web", "worker-bulk", "worker-transactional", "flower", "proxy")


def _podman_compose() -> str:
    found = os.environ.get("PODMAN_COMPOSE") or shutil.which("podman-compose")
    local = ROOT / ".venv-containers" / "bin" / "podman-compose"
    if not found and local.exists():
        found = str(local)
    if not found or not shutil.which("podman"):
        pytest.fail("CONTAINERS=1 needs podman and podman-compose (make test-containers installs the latter)")
    return found


def _run(args: list[str], env: dict[str, str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def _healthy(container: str, env: dict[str, str]) -> bool:
    # podman 4.3 runs health checks from systemd timers, which a host without systemd lacks:
    # run the container's own check, as the timer would, until it passes.
    return _run(["podman", "healthcheck", "run", container], env, timeout=60, check=False).returncode == 0


class Stack:
    """One compose project: its settings, the names of its containers, and a way to talk to it."""

    def __init__(self, compose: str, smtp_port: int) -> None:
        self.project = f"nlct{uuid.uuid4().hex[:8]}"
        self.ports = {name: free_port() for name in ("POSTGRES_PORT", "REDIS_PORT", "WEB_PORT", "FLOWER_PORT",
                                                     "PROXY_PORT")}
        self.url = f"http://127.0.0.1:{self.ports['PROXY_PORT']}"
        self.env = {
            **os.environ,
            **{name: str(port) for name, port in self.ports.items()},
            "SECRET_KEY": secrets.token_urlsafe(48),
            "POSTGRES_PASSWORD": secrets.token_urlsafe(16),
            "FLOWER_BASIC_AUTH": f"admin:{secrets.token_urlsafe(12)}",
            "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(smtp_port),
            "MAIL_DEFAULT_SENDER": "Newsletter <news@example.com>",
            "BASE_URL": self.url,
            "WORKER_CONCURRENCY": "2", "WEB_CONCURRENCY": "2",
        }
        self.base = [compose, "-p", self.project, "-f", str(COMPOSE)]

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"  # podman-compose 1.0's naming

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        return _run([*self.base, *args], self.env, timeout=timeout, check=check)

    def exec(self, service: str, *args: str) -> subprocess.CompletedProcess:
        return _run(["podman", "exec", self.container(service), *args], self.env, timeout=120)

    def wait_healthy(self, services: tuple[str, ...], timeout: float) -> None:
        for service in services:
            wait_for(lambda s=service: _healthy(self.container(s), self.env), timeout, interval=2,
                     message=f"{service} to be healthy")

    def logs(self) -> str:
        out = []
        for service in (*CHECKED, "migrate", "beat"):
            result = _run(["podman", "logs", "--tail", "40", self.container(service)], self.env, check=False)
            out.append(f"--- {service}\n{result.stdout}{result.stderr}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF") or str(HERE / "containers.conf")}
    os.environ["CONTAINERS_CONF"] = env["CONTAINERS_CONF"]
    started = time.monotonic()
    _run(["sh", str(HERE / "build-images.sh")], env, timeout=3000)
    return {"build_seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def smtp() -> Iterator[RecordingSmtpServer]:
    server = RecordingSmtpServer(tempfile.mkdtemp(prefix="nl-ct-outbox-")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stack(images, smtp) -> Iterator[Stack]:
    stack = Stack(_podman_compose(), smtp.port)
    started = time.monotonic()
    try:
        # One step, as in compose.yaml's header: the migration and every process wait for what
        # they need themselves.
        stack.compose("up", "-d")
        stack.wait_healthy(CHECKED, 300)
        migrate = _run(["podman", "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                        stack.container("migrate")], stack.env)
        assert migrate.stdout.split() == ["exited", "0"]
        images["up_seconds"] = time.monotonic() - started
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        stack.compose("down", "-v", check=False)
        for volume in ("pgdata", "redisdata"):
            _run(["podman", "volume", "rm", "-f", f"{stack.project}_{volume}"], stack.env, check=False)


def test_a_campaign_goes_out_through_the_compose_stack(images, stack, smtp):
    # The image runs as its unprivileged user; gunicorn is behind nginx.
    assert stack.exec("web", "id", "-u").stdout.strip() == "10001"
    health = requests.get(f"{stack.url}/readyz", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text

    # An admin and an API key with the CLI inside the web container (the key is the last line).
    assert "admin@example.com" in stack.exec("web", "flask", "create-admin", "--email", "admin@example.com",
                                             "--password", "correct horse battery staple 42").stdout
    key = stack.exec("web", "flask", "api-keys", "create", "--name", "containers-test",
                     "--role", "admin").stdout.strip().splitlines()[-1]
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {key}"

    def post(path: str, body: dict) -> dict:
        response = api.post(f"{stack.url}/api/v1{path}", json=body, timeout=30)
        assert response.status_code in (201, 202), (path, response.status_code, response.text)
        return response.json()

    list_id = post("/lists", {"name": "Containers", "opt_in": "single"})["id"]
    emails = [f"reader{i:03d}@example.com" for i in range(RECIPIENTS)]
    for i, address in enumerate(emails):
        post("/subscribers", {"email": address, "name": f"Reader {i}", "list_ids": [list_id]})
    campaign = post("/campaigns", {
        "name": "From the containers", "subject": "Hello {{ subscriber.name }}", "from_email": "news@example.com",
        "html": '<p>Hi {{ subscriber.name }}</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
        "list_ids": [list_id],
    })
    started = time.monotonic()
    assert post(f"/campaigns/{campaign['id']}/send", {})["status"] == "sending"

    def sent():
        body = api.get(f"{stack.url}/api/v1/campaigns/{campaign['id']}", timeout=30).json()
        return body if body["status"] == "sent" else None

    try:
        body = wait_for(sent, 180, interval=1, message="the campaign to be sent")
    except TimeoutError:
        print(stack.logs())
        raise
    images["send_seconds"] = time.monotonic() - started

    assert body["totals"]["recipients"] == RECIPIENTS and body["totals"]["sent"] == RECIPIENTS, body["totals"]
    assert sorted(smtp.handler.received) == emails
    assert smtp.handler.duplicates() == {}
    assert all(len(messages) == 1 for messages in smtp.handler.received.values())
    message = message_from_bytes(smtp.handler.received[emails[0]][0], policy=policy.default)
    assert message["Subject"] == "Hello Reader 0"
    html = message.get_body(("html",))
    assert html is not None and f"{stack.url}/" in html.get_content()  # links point at BASE_URL, the proxy
    print(f"\ncontainers: build {images['build_seconds']:.0f} s, stack up and healthy {images['up_seconds']:.0f} s,"
          f" {RECIPIENTS} recipients sent in {images['send_seconds']:.1f} s")
