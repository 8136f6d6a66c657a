"""The production web path: nginx (deploy/nginx.conf.template) buffering in front of gunicorn.

Clients that trickle request bodies used to hold every gunicorn thread, so /healthz stopped
answering for everyone. Through the proxy they hold only nginx connections. The proxy is
also the one hop the app trusts (TRUSTED_PROXIES=1): a client cannot choose its own IP.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for
from tests.support.processes import BIN, ROOT, stop

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
ENVSUBST = shutil.which("envsubst")
# one_pass (tests/conftest.py): nginx's buffering and the trusted hop in front of gunicorn: the same on every database.
pytestmark = [pytest.mark.one_pass,
              pytest.mark.skipif(not (NGINX and ENVSUBST),
                                 reason="no nginx or envsubst (apt-get install nginx-light gettext-base)")]
TRICKLERS = 24  # three times gunicorn's 2 workers x 4 threads


def _up(url: str) -> bool:
    try:
        return _get(url, timeout=2) == 200
    except OSError:
        return False


def _get(url: str, headers: dict | None = None, data: bytes | None = None, timeout: float = 10) -> int:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture
def proxied(platform_env, tmp_path):
    """gunicorn as in the Procfile (2 workers x 4 threads) behind nginx; yields nginx's URL."""
    web_port, proxy_port = free_port(), free_port()
    env = {**platform_env, "TRUSTED_PROXIES": "1"}
    web_log = open(tmp_path / "gunicorn.log", "w")
    web = subprocess.Popen([str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{web_port}",
                            "--workers", "2", "--threads", "4"], cwd=ROOT, env=env, stdout=web_log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    run_dir = tmp_path / "nginx"
    # The Procfile's `proxy` process, as it runs in production.
    proxy = subprocess.Popen(["sh", str(ROOT / "deploy" / "run-nginx.sh")],
                             env={**env, "NGINX": NGINX, "NGINX_PORT": f"127.0.0.1:{proxy_port}",
                                  "WEB_PORT": str(web_port), "NGINX_RUN_DIR": str(run_dir)},
                             stdout=subprocess.DEVNULL, stderr=open(tmp_path / "nginx.log", "w"),
                             start_new_session=True)
    base = f"http://127.0.0.1:{proxy_port}"
    try:
        wait_for(lambda: _up(base + "/healthz"), 60, 0.2, "gunicorn behind nginx")
        yield base, proxy_port
    finally:
        try:
            stop(proxy)
        finally:
            stop(web)
            web_log.close()


def _trickle(port: int, stop_at: float, trickled: list[int], me: int) -> None:
    """A client that promises a 100 kB form body and sends it one byte at a time.

    `trickled[me]` counts the body bytes sent so far."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\nemail=")
        while time.monotonic() < stop_at:
            try:
                sock.sendall(b"a")
            except OSError:
                return  # nginx closed us (client_body_timeout): fine
            trickled[me] += 1
            time.sleep(0.5)  # the point: a slow client, one byte every half second


def test_slow_clients_do_not_starve_healthz(proxied):
    base, port = proxied
    stop_at = time.monotonic() + 12
    trickled = [0] * TRICKLERS
    threads = [threading.Thread(target=_trickle, args=(port, stop_at, trickled, i), daemon=True)
               for i in range(TRICKLERS)]
    for thread in threads:
        thread.start()
    wait_for(lambda: min(trickled) >= 2, 8, message="every trickler connected and mid-body")
    answered = [_get(base + "/healthz", timeout=5) for _ in range(10)]
    assert answered == [200] * 10
    for thread in threads:
        thread.join(timeout=20)


def test_the_app_sees_the_client_nginx_saw_not_the_one_it_claims(app, proxied):
    from newsletter.models import OptIn
    from newsletter.services.audience import lists

    base, _ = proxied
    with app.app_context():
        list_id = lists.create(f"Proxy {uuid.uuid4().hex[:6]}", OptIn.SINGLE, public=True).id

    def signup(claimed_ip: str) -> int:
        body = f"email={uuid.uuid4().hex[:8]}%40example.org".encode()
        return _get(f"{base}/subscribe/{list_id}", data=body,
                    headers={"X-Forwarded-For": claimed_ip, "Content-Type": "application/x-www-form-urlencoded"})

    # Five a minute per client: claiming a new address each time does not buy a sixth.
    codes = [signup(f"203.0.113.{n}") for n in range(6)]
    assert codes[:5] == [200] * 5 and codes[5] == 429  # urllib follows the 302 to the thanks page


def test_the_request_id_is_the_load_balancers_or_nginxs(proxied):
    """nginx passes a caller's X-Request-ID on, or gives its own $request_id: the app returns it."""
    import re

    base, _ = proxied

    def request_id(headers: dict[str, str]) -> str:
        with urllib.request.urlopen(urllib.request.Request(base + "/healthz", headers=headers), timeout=10) as answer:
            return answer.headers["X-Request-ID"]

    assert request_id({"X-Request-ID": "lb-0d6f2a9e-77"}) == "lb-0d6f2a9e-77"
    first, second = request_id({}), request_id({})
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second
