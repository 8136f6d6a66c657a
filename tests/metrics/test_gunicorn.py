"""gunicorn as in the Procfile (2 workers x 4 threads, gunicorn.conf.py): every worker's counts in
one /metrics, whichever worker answers, and a killed worker's counts kept."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from newsletter.metrics import multiproc
from newsletter.models import Role
from newsletter.services.accounts import api_keys
from tests.support.metrics import parse, value
from tests.support.net import free_port, wait_for
from tests.support.processes import BIN, ROOT, stop

# one_pass (tests/conftest.py): gunicorn's workers sharing their metrics: the same on every database.
pytestmark = pytest.mark.one_pass

LABELS = {"type": "hard", "source": "api", "result": "recorded"}


def _request(url: str, body: dict | None = None, key: str = "") -> tuple[int, str]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def web(platform_env, tmp_path):
    """gunicorn on a free port; yields (base URL, its metrics folder)."""
    port = free_port()
    folder = multiproc.root() / multiproc.group_name(f"web-127.0.0.1:{port}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "counter_999999999.db").write_bytes(b"left by an earlier run")
    log = open(tmp_path / "gunicorn.log", "w")
    process = subprocess.Popen([str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}",
                                "--workers", "2", "--threads", "4"], cwd=ROOT, env=platform_env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _request(base + "/healthz")[0] == 200, 60, 0.2, "gunicorn")
        yield base, folder
    finally:
        stop(process)
        log.close()


def _bounces(base: str, key: str, first: int, n: int) -> None:
    def post(i: int) -> int:
        return _request(base + "/api/v1/bounces", {"type": "hard", "email": f"b{i}@example.com",
                                                   "event_id": f"gunicorn-{i}"}, key)[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(post, range(first, first + n))) == {201}


def _total(base: str) -> float:
    status, text = _request(base + "/metrics")
    assert status == 200, text
    return value(parse(text), "newsletter_bounce_reports_total", **LABELS)


def test_every_worker_counts_into_one_metrics_page_and_a_killed_workers_counts_stay(app, web):
    base, folder = web
    assert not (folder / "counter_999999999.db").exists()  # the master emptied its folder as it started
    with app.app_context():
        _, key = api_keys.create_api_key("metrics", Role.MARKETER)

    # The page covers every process group on the host, this test process's too: earlier tests in
    # the session may have counted API bounces there. Only this test's moves are compared.
    before = _total(base)
    _bounces(base, key, 0, 24)
    assert {_total(base) - before for _ in range(8)} == {24}  # whichever worker answers the scrape
    counting = sorted(int(f.name[len("counter_"):-3]) for f in folder.glob("counter_*.db"))
    assert counting, list(folder.iterdir())

    os.kill(counting[0], signal.SIGKILL)  # a worker that counted some: gunicorn starts another
    # The master folds the killed worker's counters into the group's archive (one file fewer to read).
    wait_for(lambda: not (folder / f"counter_{counting[0]}.db").exists(), 30, 0.1, "the master to see the worker go")
    assert (folder / "counter_archive.db").exists()
    _bounces(base, key, 24, 16)
    assert {_total(base) - before for _ in range(8)} == {40}
