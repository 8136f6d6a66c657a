"""Postfix's smtp-sink (the receiving end of every variant) and smtp-source (the `limit` variant).

smtp-sink runs with `-c`: it rewrites a `sess=.. quit=.. mesg=N` counter line (ending in a
carriage return) after every message; `Sink.count()` reads the last one from the tail of its
output file, so a sample costs one small read.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from procs import Children

SMTP_SINK, SMTP_SOURCE = "/usr/sbin/smtp-sink", "/usr/sbin/smtp-source"
_COUNTER = re.compile(rb"mesg=(\d+)")


def ensure_postfix_tools() -> None:
    """Install Debian's postfix package for its two test programs if they are missing.

    The daemon is never started: a temporary policy-rc.d tells the package scripts not to
    start services (the standard Debian mechanism), and it is removed again afterwards.
    """
    if os.path.exists(SMTP_SINK) and os.path.exists(SMTP_SOURCE):
        return
    if shutil.which("apt-get") is None:
        raise SystemExit("bench: smtp-sink/smtp-source missing and apt-get is not available (install postfix)")
    policy = Path("/usr/sbin/policy-rc.d")
    created = not policy.exists()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        if created:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        subprocess.run(["debconf-set-selections"], input="postfix postfix/main_mailer_type select No configuration\n",
                       text=True, env=env, check=False)
        if subprocess.run(["apt-get", "install", "-y", "postfix"], env=env).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, check=True)
            subprocess.run(["apt-get", "install", "-y", "postfix"], env=env, check=True)
    finally:
        if created:
            policy.unlink(missing_ok=True)
    if not os.path.exists(SMTP_SINK):
        raise SystemExit("bench: installing postfix did not provide /usr/sbin/smtp-sink")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """One smtp-sink on a fresh loopback port, counting from zero."""

    def __init__(self, children: Children, workdir: Path, name: str) -> None:
        self.port = free_port()
        self.out = workdir / f"sink-{name}.out"
        argv = [SMTP_SINK, "-c"]
        if os.geteuid() == 0:
            argv += ["-u", "nobody"]  # smtp-sink refuses to run as root without dropping privileges
        # -m: simultaneous sessions; the baseline opens one per message, the platform one per pool process.
        argv += ["-m", "1024", f"127.0.0.1:{self.port}", "1024"]
        self.children = children
        self.proc = children.start(argv, self.out)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"smtp-sink exited: {self.out.read_text(errors='replace')[-500:]}") from None
                time.sleep(0.05)
        else:
            raise RuntimeError("smtp-sink did not start listening")
        self.sessions_at_start = self._sessions()  # our readiness probe counts as one session

    def _tail(self) -> bytes:
        try:
            with open(self.out, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - 200))
                return handle.read()
        except OSError:
            return b""

    def count(self) -> int:
        found = _COUNTER.findall(self._tail())
        return int(found[-1]) if found else 0

    def _sessions(self) -> int:
        found = re.findall(rb"sess=(\d+)", self._tail())
        return int(found[-1]) if found else 0

    def settle(self, expected: int, timeout: float = 5) -> int:
        return settle(self.count, expected, timeout)

    def stop(self) -> None:
        Children.stop(self.proc, grace=5)


def settle(count: Callable[[], int], expected: int, timeout: float = 5) -> int:
    """The final `count()` of one sink or several, once it reached `expected` or stopped moving."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        now = count()
        if now >= expected or now == last:
            return now
        last = now
        time.sleep(0.2)
    return count()


def run_source(port: int, n: int, size: int, sessions: int, timeout: float) -> dict:
    """smtp-source with persistent sessions (-d); returns wall seconds and its own CPU (wait4 rusage)."""
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(n), "-l", str(size), "-d",
            "-f", "bench@example.com", "-t", "limit@example.com", f"127.0.0.1:{port}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    started = time.perf_counter()
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            os.killpg(proc.pid, 9)
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return {"seconds": elapsed, "returncode": proc.returncode, "cpu_s": usage.ru_utime + usage.ru_stime,
            "stderr": err[-500:], "argv": " ".join(argv)}
