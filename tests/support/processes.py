"""Run platform processes (Celery workers, the flask CLI) as real subprocesses."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from .net import wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# How long a process may take to start (import the app, connect, say it is ready). A bound, not a
# cost: a healthy start returns as soon as it is up. A worker starts in a few seconds on an idle
# machine, but CI runs two sessions at once on two cores beside others' (load 10-20), and there a
# start that needs a few CPU-seconds takes ten times as long.
START_TIMEOUT = 180


def flask_cli(*args: str, env: Mapping[str, str] | None = None,
              timeout: float = START_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT, env=dict(env or os.environ), capture_output=True, text=True, timeout=timeout,
    )


class ProcessLog:
    """Drains a child's output into memory so the pipe never fills and tests can read it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, args=(process,), daemon=True)
        self._thread.start()

    def _pump(self, process: subprocess.Popen) -> None:
        for line in iter(process.stdout.readline, ""):
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def tasks_in_progress(self) -> set[str]:
        """Ids of the tasks a Celery worker logged as received and not yet as finished (INFO log)."""
        running: set[str] = set()
        for line in list(self.lines):
            found = _TASK_EVENT.search(line)
            if found and found.group(2) == "received":
                running.add(found.group(1))
            elif found:
                running.discard(found.group(1) or found.group(4))
        return running


# Celery's worker log: "Task <name>[<id>] received", then "... succeeded in", "raised", "retry:", ...;
# or, for a task that expired (every beat tick does after its interval) or was revoked before it
# ran, "Discarding revoked task: <name>[<id>]", and it never runs.
_TASK_EVENT = re.compile(r"Task [\w.]+\[([0-9a-f-]+)\] (received|succeeded|raised|retry|failed|ignored|rejected)"
                         r"|Discarding (revoked) task: [\w.]+\[([0-9a-f-]+)\]")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def celery_worker(
    env: Mapping[str, str] | None = None,
    queues: str = "transactional,bulk,default",
    concurrency: int = 2,
    pool: str = "prefork",
    ready_timeout: float = START_TIMEOUT,
    name: str = "test",
    options: tuple[str, ...] = (),
) -> Iterator[tuple[subprocess.Popen, ProcessLog]]:
    """A `celery -A celery_worker worker` subprocess (`options`: more command-line flags); yields
    once it says it is ready."""
    hostname = f"{name}-{uuid.uuid4().hex[:8]}@%h"
    process = subprocess.Popen(
        [str(BIN / "celery"), "-A", "celery_worker", "worker", "--queues", queues,
         "--concurrency", str(concurrency), "--pool", pool, "--loglevel", "INFO",
         "--hostname", hostname, "--without-mingle", "--without-gossip", *options],
        cwd=ROOT, env=dict(env or os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    log = ProcessLog(process)
    try:
        wait_for(lambda: " ready." in log.text or process.poll() is not None, ready_timeout,
                 message="the Celery worker to be ready")
        if process.poll() is not None:
            raise RuntimeError(f"worker exited with {process.returncode}:\n{log.text[-3000:]}")
        yield process, log
    finally:
        stop(process)


# The production layout (Procfile): bulk campaign work and housekeeping on one set of
# workers, the transactional lane on its own, so a big campaign can never occupy it.
BULK_QUEUES, TRANSACTIONAL_QUEUES = "bulk,default", "transactional"


@contextmanager
def platform_workers(env: Mapping[str, str] | None = None,
                     concurrency: int = 2) -> Iterator[tuple[ProcessLog, ProcessLog]]:
    """A bulk/default worker and a dedicated transactional worker; yields (bulk log, transactional log)."""
    with celery_worker(env, queues=BULK_QUEUES, concurrency=concurrency, name="bulk") as (_, bulk_log):
        with celery_worker(env, queues=TRANSACTIONAL_QUEUES, concurrency=concurrency, name="tx") as (_, tx_log):
            yield bulk_log, tx_log


@contextmanager
def celery_beat(env: Mapping[str, str] | None = None) -> Iterator[tuple[subprocess.Popen, ProcessLog]]:
    """`celery beat` as a subprocess (its schedule file in a temp folder); stopped on exit."""
    import tempfile

    schedule = Path(tempfile.mkdtemp(prefix="beat-")) / "schedule"
    process = subprocess.Popen(
        [str(BIN / "celery"), "-A", "celery_worker", "beat", "--loglevel", "INFO", "--schedule", str(schedule)],
        cwd=ROOT, env=dict(env or os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    log = ProcessLog(process)
    try:
        yield process, log
    finally:
        stop(process)


@contextmanager
def gunicorn(env: Mapping[str, str], workers: int = 1,
             ready_timeout: float = START_TIMEOUT) -> Iterator[tuple[str, ProcessLog]]:
    """The Procfile's web process (gunicorn.conf.py, access log on stdout) on a free loopback
    port; yields (base URL, its output) once /healthz answers."""
    import urllib.error
    import urllib.request

    from .net import free_port

    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", "4", "--access-logfile", "-"],
        cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )
    log = ProcessLog(process)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            return True
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (a 503 while a dependency is down is still an answer)
        except OSError:
            return False

    try:
        wait_for(up, ready_timeout, 0.2, "gunicorn to answer")
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.text[-3000:]}")
        yield base, log
    finally:
        stop(process)
