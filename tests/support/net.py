"""Loopback ports and reachability probes."""
from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str | Callable[[], str] = "condition"):
    """The predicate's first true value, tried every `interval` seconds for `timeout` seconds.

    The last try is made at the deadline, not up to `interval` before it: on a loaded machine a
    sleep or a slow try can overshoot, and a condition met in time must not fail for it. `message`
    may be a callable, read only on timeout (e.g. the ledger as it is then, not as it was at the start).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        left = deadline - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))
    raise TimeoutError(f"timed out after {timeout}s waiting for {message() if callable(message) else message}")


def http_status(url: str, login: str | None = None, timeout: float = 10) -> int:
    """The status of a GET (with HTTP basic auth `user:password` if given); 0 when nothing answers."""
    import base64
    import urllib.error
    import urllib.request

    headers = {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()} if login else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
