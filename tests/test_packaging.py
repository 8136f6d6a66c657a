"""pyproject.toml is the one list of what the platform needs; requirements*.txt pin exactly that.

`[project.dependencies]` (and the `dev` extra) name what the code imports; requirements.txt and
requirements-dev.txt pin every package those pull in, and nothing else. This test walks the
dependency metadata of the installed .venv from pyproject's names and fails, naming the package
and the file to change, when the two disagree: a pin nothing in pyproject needs (the app would
lack it after `pip install .`), a package pyproject pulls in but no file pins, or a pin outside
pyproject's range. Offline: it reads only the files and the installed metadata.

Then the proof: `pip install` of this checkout alone into a fresh venv (versions held to the pins
with `-c requirements.txt`) installs exactly the pinned set, and from that venv, outside the
checkout, the flask CLI upgrades a new SQLite database, gunicorn serves pages, static files and
the probes, and a Celery worker runs a task through a Redis this test starts.
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from newsletter.devserver.embedded_redis import EmbeddedRedis
from tests.support.net import wait_for
from tests.support.processes import ProcessLog, stop

# one_pass (tests/conftest.py): a fresh venv with its own SQLite and Redis: nothing here reads the session's servers.
pytestmark = pytest.mark.one_pass

ROOT = Path(__file__).resolve().parents[1]
# Pins are for Linux CPython: a pin is needed if some supported Python version pulls it in.
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
# The installer's own tools come with every venv; like pip-compile, the pins leave them out.
UNPINNED = {"pip", "setuptools"}


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(name: str) -> dict[NormalizedName, str]:
    """`package==version` lines of a requirements file; comments and `-r` includes skipped."""
    found: dict[NormalizedName, str] = {}
    for number, raw in enumerate((ROOT / name).read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-r "):
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{name}:{number}: pin exactly, as name==version: {raw}"
        key = canonicalize_name(requirement.name)
        assert key not in found, f"{name}:{number}: {requirement.name} is pinned twice"
        found[key] = specs[0].version
    return found


def environments() -> list[dict[str, str]]:
    here = dict(default_environment())
    return [{**here, "python_version": v, "python_full_version": v + ".0"} for v in PYTHONS]


def wanted(requirement: Requirement, extras: Iterable[str], env: Mapping[str, str]) -> bool:
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({**env, "extra": extra}) for extra in ("", *extras))


def closure(roots: Iterable[str], envs: list[dict[str, str]]) -> dict[NormalizedName, str]:
    """Every package `roots` pull in under any of `envs`, each with the first one that needs it."""
    needed_by: dict[NormalizedName, str] = {}
    todo = [(Requirement(text), "pyproject.toml") for text in roots]
    seen: set[tuple[NormalizedName, frozenset[str]]] = set()
    while todo:
        requirement, parent = todo.pop()
        key = canonicalize_name(requirement.name)
        needed_by.setdefault(key, parent)
        if (key, frozenset(requirement.extras)) in seen:
            continue
        seen.add((key, frozenset(requirement.extras)))
        try:
            dist = metadata.distribution(key)
        except metadata.PackageNotFoundError:
            continue  # needed only elsewhere (another platform or Python): nothing to walk here
        for text in dist.requires or []:
            child = Requirement(text)
            if any(wanted(child, requirement.extras, env) for env in envs):
                todo.append((child, dist.metadata["Name"]))
    return needed_by


def disagreements(roots: list[str], pinned: Mapping[NormalizedName, str], pin_file: str,
                  pinned_elsewhere: Mapping[NormalizedName, str] | None = None) -> list[str]:
    """What is wrong between the packages `roots` pull in and those `pinned` in `pin_file`, one
    line each; `pinned_elsewhere` holds the pins of requirements.txt when checking the dev file."""
    elsewhere = pinned_elsewhere or {}
    problems = []
    for name, parent in sorted(closure(roots, [dict(default_environment())]).items()):
        if name in UNPINNED or name in elsewhere:
            continue
        if name not in pinned:
            problems.append(f"{name} (needed by {parent}) is not pinned: add {name}==<version> to {pin_file}")
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pinned[name]:
            problems.append(f"{name} is {installed or 'not installed'} in this venv, pinned {pinned[name]}: "
                            "run `make install-dev` first")
    for name in sorted(set(pinned) - set(closure(roots, environments()))):
        problems.append(f"{name} is pinned but nothing in pyproject.toml needs it: add it to pyproject.toml "
                        f"(if the code imports it) or remove its pin from {pin_file}")
    for text in roots:
        requirement = Requirement(text)
        version = {**elsewhere, **pinned}.get(canonicalize_name(requirement.name))
        if version and not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement.name}=={version} is outside pyproject.toml's {text!r}")
    return problems


def test_requirements_txt_pins_exactly_what_pyproject_needs():
    problems = disagreements(pyproject()["dependencies"], pins("requirements.txt"), "requirements.txt")
    assert not problems, "\n".join(problems)


def test_requirements_dev_txt_pins_exactly_what_the_dev_extra_adds():
    project = pyproject()
    runtime, dev = pins("requirements.txt"), pins("requirements-dev.txt")
    assert not set(runtime) & set(dev), f"pinned in both files: {sorted(set(runtime) & set(dev))}"
    roots = project["dependencies"] + project["optional-dependencies"]["dev"]
    problems = disagreements(roots, dev, "requirements-dev.txt", runtime)
    assert not problems, "\n".join(problems)


def test_dependency_lists_stay_sorted_one_a_line():
    """Branches add dependencies side by side: sorted lists merge without conflicts or duplicates."""
    project = pyproject()
    for label, entries in (("dependencies", project["dependencies"]),
                           ("optional-dependencies.dev", project["optional-dependencies"]["dev"])):
        names = [canonicalize_name(Requirement(text).name) for text in entries]
        assert names == sorted(set(names)), f"pyproject.toml [project.{label}]: keep one entry per package, sorted"


# What `pip install` prints when it cannot reach an index: then the test skips rather than fails.
OFFLINE = re.compile(r"NewConnectionError|Failed to establish a new connection|Temporary failure in name resolution"
                     r"|Network is unreachable|ConnectTimeout|Max retries exceeded")
# Not part of a package: version control, local environments, build leftovers, data, caches.
LOCAL_ONLY = shutil.ignore_patterns(".git", ".venv", "node_modules", "instance", "build", "dist", "*.egg-info",
                                    "__pycache__", ".*_cache", "bench")


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding `pip install <this checkout>` and what pyproject.toml pulls in.

    pip builds from a copy: building in the checkout would leave build/ there, and setuptools
    ships whatever stale files build/ still holds."""
    if not (ROOT / "static" / "vendor" / "pico.min.css").exists():
        pytest.fail("static/vendor/ is missing: run `make static` (make test does) before packaging")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    shutil.copytree(ROOT, source, ignore=LOCAL_ONLY)
    subprocess.run([sys.executable, "-m", "venv", str(work / "venv")], check=True)
    bin_dir = work / "venv" / "bin"
    result = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "--quiet", str(source), "-c", str(ROOT / "requirements.txt")],
        capture_output=True, text=True, timeout=1200,
    )
    if result.returncode and OFFLINE.search(result.stdout + result.stderr):
        pytest.skip(f"PyPI is unreachable, cannot install the package: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return bin_dir


@pytest.fixture
def app_env(installed: Path) -> Iterator[dict[str, str]]:
    """The environment of a production deployment of the installed app, in a temp folder that is
    also each process's working directory (so nothing is imported from the checkout)."""
    home = Path(tempfile.mkdtemp(prefix="nl-pkg-"))  # short: the Redis socket path is limited to 107 bytes
    with EmbeddedRedis(home / "redis") as redis_server:
        yield {
            "PATH": f"{installed}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
            "INSTANCE_PATH": str(home / "instance"), "DATABASE_URL": f"sqlite:///{home / 'newsletter.db'}",
            "REDIS_URL": redis_server.url, "MAIL_SERVER": "127.0.0.1", "BASE_URL": "http://127.0.0.1",
        }
    shutil.rmtree(home, ignore_errors=True)


def run(env: Mapping[str, str], *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=env["HOME"], env=dict(env), capture_output=True, text=True, timeout=300)


def start(env: Mapping[str, str], *argv: str) -> tuple[subprocess.Popen, ProcessLog]:
    process = subprocess.Popen(argv, cwd=env["HOME"], env=dict(env), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    return process, ProcessLog(process)


def upgrade(env: Mapping[str, str]) -> None:
    result = run(env, "flask", "--app", "wsgi", "db", "upgrade")
    assert result.returncode == 0, result.stderr[-3000:]


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers.get("Content-Type", ""), response.read()


@pytest.mark.slow
def test_the_package_alone_installs_exactly_the_pinned_versions(installed):
    freeze = subprocess.run([str(installed / "python"), "-m", "pip", "freeze", "--exclude", "newsletter"],
                            capture_output=True, text=True, check=True).stdout
    found = {canonicalize_name(Requirement(line).name): line.split("==", 1)[1] for line in freeze.splitlines()}
    assert {name: v for name, v in found.items() if name not in UNPINNED} == pins("requirements.txt")


@pytest.mark.slow
def test_the_installed_cli_migrates_a_new_database(app_env):
    commands = run(app_env, "flask", "--app", "wsgi", "--help")
    assert re.search(r"^\s+db\s", commands.stdout, re.M), commands.stdout + commands.stderr
    assert re.search(r"^\s+create-admin\s", commands.stdout, re.M), commands.stdout

    upgrade(app_env)
    current = run(app_env, "flask", "--app", "wsgi", "db", "current")
    assert "(head)" in current.stdout, current.stdout + current.stderr
    created = run(app_env, "flask", "--app", "wsgi", "create-admin", "--email", "ops@example.com",
                  "--password", "a long installed passphrase")
    assert created.returncode == 0, created.stderr[-3000:]


@pytest.mark.slow
def test_the_installed_app_serves_pages_static_files_and_probes(app_env):
    upgrade(app_env)
    process, log = start(app_env, "gunicorn", "wsgi:app", "--bind", "127.0.0.1:0", "--workers", "1")
    try:
        found = wait_for(lambda: re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.text)
                         or process.poll() is not None, 120, message="gunicorn to listen")
        assert process.poll() is None, log.text[-3000:]
        base = found.group(1)
        status, kind, body = wait_for(lambda: _try_get(base + "/healthz"), 120, message="the app to answer")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, _, body = get(base + "/readyz")  # database, broker and Redis, as configured
        assert status == 200 and json.loads(body)["status"] == "ok", body
        status, kind, body = get(base + "/login")  # a page: the templates are installed
        assert status == 200 and kind.startswith("text/html") and b'name="password"' in body
        status, kind, body = get(base + "/static/vendor/pico.min.css")  # make static's assets too
        assert status == 200 and kind.startswith("text/css") and len(body) > 10_000
    finally:
        stop(process)


def _try_get(url: str) -> tuple[int, str, bytes] | None:
    try:
        return get(url)
    except OSError:
        return None  # gunicorn's worker is still booting


@pytest.mark.slow
def test_the_installed_worker_answers_ping_and_runs_a_task(app_env, monkeypatch):
    upgrade(app_env)  # the worker checks its database at start-up
    hostname = f"pkg-{uuid.uuid4().hex[:8]}@localhost"
    process, log = start(app_env, "celery", "-A", "celery_worker", "worker", "--queues", "default,transactional,bulk",
                         "--concurrency", "1", "--hostname", hostname, "--loglevel", "INFO", "--without-mingle",
                         "--without-gossip")
    try:
        wait_for(lambda: " ready." in log.text or process.poll() is not None, 120, message="the worker to be ready")
        assert process.poll() is None, log.text[-3000:]
        pong = run(app_env, "celery", "-A", "celery_worker", "inspect", "ping", "--destination", hostname)
        assert pong.returncode == 0 and "pong" in pong.stdout, pong.stdout + pong.stderr

        # A task sent by this checkout's code, run by the installed one, through the same Redis.
        for name, value in app_env.items():
            if name not in ("PATH", "HOME", "LANG"):
                monkeypatch.setenv(name, value)
        for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):  # Celery would prefer these to REDIS_URL
            monkeypatch.delenv(name, raising=False)
        from newsletter import create_app

        celery = create_app().extensions["celery"]
        result = celery.send_task("newsletter.tasks.system.ping").get(timeout=60)
        assert result == {"app": "newsletter", "env": "production"}
    finally:
        stop(process)
