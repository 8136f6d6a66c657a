"""Where this host's processes keep their metric values: prometheus_client's multiprocess mode.

Every gunicorn worker and every Celery pool process writes its counters into small mmap files,
and whoever serves /metrics (or a worker's METRICS_PORT exporter) reads them all. The files live
under one root per host: PROMETHEUS_MULTIPROC_DIR if the operator set it, else
`<INSTANCE_PATH>/metrics`. Each process group has its own folder under it:

- `web-<bind>`: one gunicorn master and its workers (gunicorn.conf.py), emptied when it starts;
- `worker-<node name>`: one Celery worker and its pool (celery_worker.py), emptied when it starts;
- `pid-<pid>`: any other process (the flask CLI, a test run); removed once that pid is gone.

A group's values are exported with its folder's name as the `process_group` label, so a group
that restarts (its counters back at zero) reads as that series' reset, never as a drop in the
others' totals. The mode is chosen when prometheus_client is first imported, so `activate` runs
before it: from the entry points with their group, else from `instruments` with a pid group.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads the group folder from here
ROOT_ENV = "NEWSLETTER_METRICS_ROOT"  # the resolved root, for child processes (tests, `make run`)
_active: Path | None = None


def root(env: os._Environ[str] | dict[str, str] | None = None) -> Path:
    """The host's metrics root (a child process inherits its parent's)."""
    env = os.environ if env is None else env
    if env.get(ROOT_ENV):
        return Path(env[ROOT_ENV])
    if env.get(DIR_ENV):
        return Path(env[DIR_ENV])
    from ..config import ROOT

    return Path(env.get("INSTANCE_PATH") or ROOT / "instance").resolve() / "metrics"


def group_name(raw: str) -> str:
    """A folder name (and label value) from a process group's name."""
    return re.sub(r"[^A-Za-z0-9_.@-]", "_", raw)[:100] or "unnamed"


def activate(group: str | None = None, fresh: bool = False) -> Path:
    """Make this process (and the ones it forks) write under `<root>/<group>/`; idempotent.

    `fresh`: empty the group's folder first: the caller is the group's parent, starting, so
    whatever is there was left by its previous run. Folders of dead `pid-` groups are removed.
    """
    global _active
    if _active is not None:
        return _active
    base, name = root(), group_name(group or f"pid-{os.getpid()}")
    try:
        path = _prepare(base, name, fresh)
    except OSError as exc:  # e.g. an installed package's read-only instance/: every process falls back alike
        fallback = Path(tempfile.gettempdir()) / f"newsletter-metrics-{os.getuid()}"
        print(f"newsletter: cannot write metrics under {base} ({exc.strerror}); using {fallback} "
              f"(set {DIR_ENV} to a writable local folder)", file=sys.stderr)
        base, path = fallback, _prepare(fallback, name, fresh)
    os.environ[ROOT_ENV] = str(base)
    os.environ[DIR_ENV] = str(path)
    _active = path
    return path


def _prepare(base: Path, name: str, fresh: bool) -> Path:
    path = base / name
    if fresh:
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    forget_dead(base)
    return path


def active() -> Path | None:
    return _active


def forget_dead(base: Path) -> None:
    """Remove the `pid-` groups of processes that are gone (their series end with them)."""
    try:
        folders = list(base.glob("pid-*"))
    except OSError:
        return
    for folder in folders:
        pid = folder.name[4:]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def process_dead(pid: int) -> None:
    """A child of this group exited (gunicorn's child_exit, a Celery pool process shutting down):
    drop its live gauges, and fold its counters into the group's archive (`compact`). Never raises:
    gunicorn's master calls it."""
    if _active is None:
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, str(_active))
        compact(_active, pid)
    except Exception as exc:  # noqa: BLE001
        print(f"newsletter: could not tidy the metrics of exited process {pid}: {exc}", file=sys.stderr)


@contextmanager
def locked(folder: Path, how: int) -> Iterator[None]:
    """A group's lock: readers share it, `compact` takes it alone, so no scrape ever sees an
    exited process's values twice (archive and own file) or not at all."""
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, how)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def compact(folder: Path, pid: int) -> None:
    """Add an exited process's counters and histograms to `<kind>_archive.db` and remove its files.

    A scrape reads every file of every group, and a long-lived worker outlives thousands of pool
    processes (WORKER_MAX_TASKS_PER_CHILD): without this the page would slow down day by day.
    """
    from prometheus_client.mmap_dict import MmapedDict

    with locked(folder, fcntl.LOCK_EX):
        for kind in ("counter", "histogram"):
            own = folder / f"{kind}_{pid}.db"
            if not own.exists():
                continue
            values = [(key, value) for key, value, _, _ in MmapedDict.read_all_values_from_file(str(own))]
            archive = MmapedDict(str(folder / f"{kind}_archive.db"))
            try:
                for key, value in values:
                    archive.write_value(key, archive.read_value(key)[0] + value, 0.0)
            finally:
                archive.close()
            own.unlink()


def celery_group(argv: list[str]) -> str:
    """`worker-<name>` from a `celery worker` command line's --hostname/-n (the node name's part
    before '@': the folder is per host already)."""
    name = "celery"
    for i, arg in enumerate(argv):
        if arg in ("-n", "--hostname") and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--hostname="):
            name = arg.split("=", 1)[1]
    return "worker-" + name.split("@")[0]
