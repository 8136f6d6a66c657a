"""The per-host metrics folder: group names, stale groups, dead children, reading groups back."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.mmap_dict import MmapedDict, mmap_key

from newsletter.metrics import exposition, instruments, multiproc
from tests.support.processes import ROOT


def test_a_celery_worker_is_grouped_by_its_node_name():
    assert multiproc.celery_group(["celery", "-A", "celery_worker", "worker", "--hostname", "bulk@%h"]) \
        == "worker-bulk"
    assert multiproc.celery_group(["celery", "worker", "-n", "tx@host1"]) == "worker-tx"
    assert multiproc.celery_group(["celery", "worker", "--hostname=a b@h"]) == "worker-a b"
    assert multiproc.celery_group(["celery", "worker"]) == "worker-celery"
    assert multiproc.group_name("worker-a b/../x") == "worker-a_b_.._x"
    assert multiproc.group_name("web-127.0.0.1:8000") == "web-127.0.0.1_8000"


def test_folders_of_dead_pid_groups_go_and_live_ones_stay(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / f"pid-{gone.pid}").mkdir()
    (tmp_path / f"pid-{os.getpid()}").mkdir()
    (tmp_path / "worker-bulk").mkdir()
    multiproc.forget_dead(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"pid-{os.getpid()}", "worker-bulk"]


def test_a_dead_child_loses_its_live_gauges_and_its_counters_go_to_the_archive():
    assert instruments.MESSAGES  # importing the definitions activated this process's group
    folder = multiproc.active()
    assert folder is not None and folder.parent == multiproc.root()  # the test run's own group
    archive_existed = (folder / "counter_archive.db").exists()
    pid = 999_999_001
    for name in (f"gauge_livesum_{pid}.db", f"gauge_liveall_{pid}.db", f"counter_{pid}.db"):
        MmapedDict(str(folder / name)).close()
    try:
        multiproc.process_dead(pid)
        assert list(folder.glob(f"*_{pid}.db")) == []
        assert (folder / "counter_archive.db").exists()
    finally:
        if not archive_existed:
            (folder / "counter_archive.db").unlink(missing_ok=True)


def _count(folder, pid: int, n: float, labels: dict[str, str]) -> None:
    folder.mkdir(exist_ok=True)
    values = MmapedDict(str(folder / f"counter_{pid}.db"))
    values.write_value(mmap_key("jobs", "jobs_total", list(labels), list(labels.values()), "Jobs."), n, 0.0)
    values.close()


def test_each_group_is_read_with_its_own_label_and_a_bad_file_costs_only_itself(tmp_path):
    _count(tmp_path / "web-a", 1, 2, {"kind": "x"})
    _count(tmp_path / "web-a", 2, 3, {"kind": "x"})  # two processes of one group: summed
    _count(tmp_path / "worker-b", 3, 7, {"kind": "x"})
    (tmp_path / "worker-b" / "counter_4.db").write_bytes(b"not an mmap file")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in exposition.GroupCollector(tmp_path).collect() for s in family.samples}
    assert samples == {("jobs_total", (("kind", "x"), ("process_group", "web-a"))): 5.0,
                       ("jobs_total", (("kind", "x"), ("process_group", "worker-b"))): 7.0}


def test_an_unwritable_root_falls_back_to_a_temporary_folder_and_says_so(tmp_path, platform_env):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    env = {**platform_env, "PROMETHEUS_MULTIPROC_DIR": str(blocker / "metrics"), "TMPDIR": str(tmp_path)}
    env.pop("NEWSLETTER_METRICS_ROOT", None)
    run = subprocess.run([sys.executable, "-c", "from newsletter.metrics import instruments, multiproc; "
                          "instruments.MESSAGES.labels('campaign', 'sent', '2xx').inc(); print(multiproc.active())"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    folder = Path(run.stdout.strip())
    assert folder.parent == tmp_path / f"newsletter-metrics-{os.getuid()}"
    assert list(folder.glob("counter_*.db"))
    assert "cannot write metrics under" in run.stderr and "PROMETHEUS_MULTIPROC_DIR" in run.stderr


def test_an_exited_process_is_folded_into_the_groups_archive_and_the_totals_do_not_move(tmp_path):
    group = tmp_path / "worker-bulk"
    _count(group, 11, 2, {"kind": "x"})
    _count(group, 12, 3, {"kind": "x"})
    _count(group, 13, 4, {"kind": "y"})

    def totals() -> dict:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for family in exposition.GroupCollector(tmp_path).collect() for s in family.samples}

    before = totals()
    for pid in (11, 13, 12):
        multiproc.compact(group, pid)
        assert totals() == before
    assert sorted(p.name for p in group.glob("*.db")) == ["counter_archive.db"]
    _count(group, 14, 1, {"kind": "x"})  # a newer process of the group adds to what the archive holds
    assert totals()[("jobs_total", (("kind", "x"), ("process_group", "worker-bulk")))] == 6
