"""Process plumbing for the send bench: start/stop process groups, and sample them while a run goes.

Every child is started in its own session (process group) so that one `killpg` ends it and
everything it forked; `Children` remembers them all so the bench's `finally` can end them
even after Ctrl-C. A `Sampler` thread reads Redis' used_memory, the RSS and CPU time of
process trees and the smtp-sink counter every 100 ms.
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil


class Children:
    """Every process group this bench started; `stop_all` ends whatever is still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], log: Path, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        handle = open(log, "ab")
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=dict(env) if env is not None else None, stdout=handle,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            handle.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    @staticmethod
    def stop(proc: subprocess.Popen, grace: float = 20, sig: int = signal.SIGTERM) -> None:
        """Signal the child's whole process group; SIGKILL it if it is not gone within `grace`."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # The leader may be gone while its pool children linger: clear the group regardless.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            try:
                self.stop(proc, grace=10)
            except Exception as exc:  # keep cleaning up the others
                print(f"bench: could not stop pid {proc.pid}: {exc}")
        self.procs.clear()


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@dataclass
class GroupStats:
    """CPU seconds and peak RSS of a set of processes that may come and go during the run."""
    name: str
    pids: Callable[[], Iterable[int]]
    first_cpu: dict[tuple[int, float], float] = field(default_factory=dict)
    last_cpu: dict[tuple[int, float], float] = field(default_factory=dict)
    rss_peak: int = 0
    procs_peak: int = 0

    def sample(self, started: bool) -> None:
        rss, count = 0, 0
        for pid in list(self.pids()):
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    key = (pid, proc.create_time())
                    times = proc.cpu_times()
                    cpu = times.user + times.system
                    rss += proc.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            count += 1
            if key not in self.last_cpu:
                # A process already running when the run began is charged only from then on.
                self.first_cpu[key] = cpu if not started else 0.0
            self.last_cpu[key] = cpu
        self.rss_peak = max(self.rss_peak, rss)
        self.procs_peak = max(self.procs_peak, count)

    @property
    def cpu_s(self) -> float:
        return sum(self.last_cpu[k] - self.first_cpu.get(k, 0.0) for k in self.last_cpu)


class Sampler(threading.Thread):
    """Samples Redis memory, process groups and the sink counter until `stop()`; keeps a timeline."""

    def __init__(self, redis_client, groups: list[GroupStats], counter: Callable[[], int],
                 interval: float = 0.1) -> None:
        super().__init__(daemon=True, name="bench-sampler")
        self.redis, self.groups, self.counter, self.interval = redis_client, groups, counter, interval
        self.redis_base = self._used_memory()
        self.redis_peak = self.redis_base
        self.timeline: list[tuple[float, int]] = []  # (seconds since t0, messages at the sink)
        self.t0: float | None = None
        self.first_message_at: float | None = None
        self._halt = threading.Event()
        self.machine_start = psutil.cpu_times()
        self.machine_busy_s = 0.0
        for group in groups:
            group.sample(started=False)

    def _used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"]) if self.redis is not None else 0

    def begin(self, t0: float) -> None:
        self.t0 = t0

    def run(self) -> None:
        last_timeline = 0.0
        while not self._halt.is_set():
            now = time.perf_counter()
            try:
                self.redis_peak = max(self.redis_peak, self._used_memory())
            except Exception:
                pass
            for group in self.groups:
                group.sample(started=True)
            if self.t0 is not None:
                count = self.counter()
                if count and self.first_message_at is None:
                    self.first_message_at = time.perf_counter() - self.t0
                if now - last_timeline >= 0.5 or not self.timeline:
                    self.timeline.append((round(now - self.t0, 3), count))
                    last_timeline = now
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)
        end = psutil.cpu_times()

        def idle(t) -> float:
            return t.idle + getattr(t, "iowait", 0.0)

        self.machine_busy_s = (sum(end) - idle(end)) - (sum(self.machine_start) - idle(self.machine_start))
        for group in self.groups:
            group.sample(started=True)
        if self.t0 is not None:
            self.timeline.append((round(time.perf_counter() - self.t0, 3), self.counter()))

    @property
    def redis_peak_delta(self) -> int:
        return max(0, self.redis_peak - self.redis_base)


def watch_first(counter: Callable[[], int], t0: float, stop: threading.Event, interval: float = 0.01) -> dict:
    """Finer-grained than the sampler: when the sink counted its first message (seconds after t0)."""
    found: dict = {}

    def loop() -> None:
        while not stop.is_set():
            if counter() > 0:
                found["first"] = time.perf_counter() - t0
                return
            time.sleep(interval)

    threading.Thread(target=loop, daemon=True, name="bench-first").start()
    return found


def wait_for_quiet(max_wait: float = 90, busy_below: float = 25.0) -> dict:
    """Wait (bounded) until the machine's other work calms down: other sessions share these 2 cores."""
    started = time.perf_counter()
    busy = psutil.cpu_percent(interval=1.0)
    while busy >= busy_below and time.perf_counter() - started < max_wait:
        busy = psutil.cpu_percent(interval=1.0)
    return {"waited_s": round(time.perf_counter() - started, 1), "busy_percent_before": busy,
            "loadavg_before": [round(x, 2) for x in os.getloadavg()]}


def foreign_cpu(sampler: Sampler, groups: list[GroupStats]) -> dict:
    """CPU the whole machine spent during the run, and how much of it was not ours (other sessions)."""
    ours = sum(g.cpu_s for g in groups)
    return {"machine_busy_cpu_s": round(sampler.machine_busy_s, 2),
            "not_measured_cpu_s": round(max(0.0, sampler.machine_busy_s - ours), 2)}


def summarise_groups(groups: list[GroupStats], n: int) -> dict:
    out = {}
    for g in groups:
        out[g.name] = {"cpu_s": round(g.cpu_s, 3),
                       "cpu_s_per_1000_msgs": round(g.cpu_s / n * 1000, 4) if n else None,
                       "rss_peak_mb": round(g.rss_peak / 2**20, 1), "processes_peak": g.procs_peak}
    return out
