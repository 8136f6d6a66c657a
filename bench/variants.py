"""The three measured variants: `limit` (smtp-source), `baseline` (tutorial Celery), `platform` (ours).

Each one gets a fresh smtp-sink, starts its own processes, samples them while it runs, stops
them, and returns a dict of figures for one N. Times are seconds from t0, the moment the
variant's first message is asked for (smtp-source started / first chord publish / send_now).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import redis

from procs import Children, GroupStats, Sampler, foreign_cpu, summarise_groups, tree, wait_for_quiet, watch_first
from sink import Sink, run_source

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
BIN = ROOT / ".venv" / "bin"


@dataclass
class Context:
    children: Children
    workdir: Path
    concurrency: int
    pool: str
    baseline_redis: str
    platform_redis: str
    sessions: int = 16
    profile_dir: Path | None = None
    tag: str = ""
    databases: list[str] = field(default_factory=list)  # dropped by the driver whatever happens
    app_root: Path = ROOT  # the platform code measured: this tree, or an old ref's worktree (--compare)


def redis_server_pid(client: redis.Redis) -> list[int]:
    return [int(client.info("server")["process_id"])]


def _rates(n_sent: int, done_s: float, timeline: list[tuple[float, int]]) -> dict:
    """Overall rate, and the steady rate between 10 % and 90 % of the messages at the sink."""
    out = {"msgs_per_s": round(n_sent / done_s, 1) if done_s else None}
    if n_sent and timeline:
        lo = next((t for t, c in timeline if c >= 0.1 * n_sent), None)
        hi = next((t for t, c in timeline if c >= 0.9 * n_sent), None)
        if lo is not None and hi is not None and hi > lo:
            out["steady_msgs_per_s"] = round(0.8 * n_sent / (hi - lo), 1)
        last = next((t for t, c in timeline if c >= n_sent), None)
        if last:
            out["last_message_at_s"] = last
    return out


def _ping_until_ready(celery_app, hostname_prefix: str, proc, timeout: float = 90) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}")
        replies = celery_app.control.ping(timeout=0.5) or []
        if any(name.startswith(hostname_prefix) for reply in replies for name in reply):
            return time.perf_counter() - started
    raise RuntimeError("the worker did not answer a ping")


# limit -----------------------------------------------------------------------------------------

def run_limit(ctx: Context, n: int, size: int, timeout: float) -> dict:
    sink = Sink(ctx.children, ctx.workdir, f"limit-{n}")
    groups = [GroupStats("smtp_sink", lambda: [sink.proc.pid])]
    quiet = wait_for_quiet()
    sampler = Sampler(None, groups, sink.count, interval=0.05)
    sampler.start()
    stop = threading.Event()
    t0 = time.perf_counter()
    sampler.begin(t0)
    first = watch_first(sink.count, t0, stop, interval=0.002)
    try:
        source = run_source(sink.port, n, size, ctx.sessions, timeout)
        received = sink.settle(n)
    finally:
        stop.set()
        sampler.stop()
        sink.stop()
    cpu = summarise_groups(groups, n)
    cpu["smtp_source"] = {"cpu_s": round(source["cpu_s"], 3),
                          "cpu_s_per_1000_msgs": round(source["cpu_s"] / n * 1000, 4)}
    result = {"n": n, "received": received, "seconds": round(source["seconds"], 3),
              "time_to_first_email_s": round(first.get("first", sampler.first_message_at or 0), 4),
              "send_call_latency_s": None, "message_bytes": size, "sessions": ctx.sessions,
              "command": source["argv"], "returncode": source["returncode"], "cpu": cpu,
              "machine": {**quiet, **foreign_cpu(sampler, groups),
                          "not_measured_cpu_s": round(max(0.0, sampler.machine_busy_s - groups[0].cpu_s
                                                          - source["cpu_s"]), 2)},
              "timeline": sampler.timeline}
    result.update(_rates(received, source["seconds"], sampler.timeline))
    if source["returncode"] != 0 or received != n:
        result["error"] = f"smtp-source exited {source['returncode']}, sink counted {received}: {source['stderr']}"
    return result


# baseline --------------------------------------------------------------------------------------

def run_baseline(ctx: Context, n: int, template: dict, timeout: float) -> dict:
    template_path = ctx.workdir / "baseline-template.json"
    template_path.write_text(json.dumps(template))
    os.environ.update(BASELINE_REDIS_URL=ctx.baseline_redis, BASELINE_TEMPLATE=str(template_path))
    sys.path.insert(0, str(BENCH))
    from celery import chord

    import baseline_app

    client = redis.Redis.from_url(ctx.baseline_redis)
    client.flushdb()  # this bench's own database number only
    sink = Sink(ctx.children, ctx.workdir, f"baseline-{n}")
    hostname = f"baseline-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, BASELINE_SMTP_PORT=str(sink.port), PYTHONPATH=str(BENCH))
    worker = ctx.children.start(
        [str(BIN / "celery"), "-A", "baseline_app", "worker", "--concurrency", str(ctx.concurrency), "--pool",
         ctx.pool, "--loglevel", "WARNING", "--hostname", f"{hostname}@%h"],
        ctx.workdir / f"baseline-worker-{n}.log", env=env, cwd=BENCH)
    result: dict = {"n": n}
    try:
        result["worker_ready_s"] = round(_ping_until_ready(baseline_app.app, hostname, worker), 2)
        groups = [GroupStats("worker", lambda: [p.pid for p in tree(worker.pid)]),
                  GroupStats("smtp_sink", lambda: [sink.proc.pid]),
                  GroupStats("bench_publisher", lambda: [os.getpid()]),
                  GroupStats("redis_server", lambda: redis_server_pid(client))]
        recipients = [(f"r{i:07d}@example.com", f"Person {i}") for i in range(n)]
        quiet = wait_for_quiet()
        sampler = Sampler(client, groups, sink.count)
        sampler.start()
        stop = threading.Event()
        t0 = time.perf_counter()
        sampler.begin(t0)
        first = watch_first(sink.count, t0, stop)
        try:
            async_result = chord(baseline_app.send_email.s(email, name) for email, name in recipients)(
                baseline_app.count_sent.s())
            call_s = time.perf_counter() - t0
            try:
                # follow_parents=False: by default get() on a chord result re-reads all N header
                # results from Redis every interval (to re-raise their errors), which made the bench
                # process, not the worker, the bottleneck.
                counted = async_result.get(timeout=max(1.0, timeout - call_s), follow_parents=False)
                result["callback_count"] = counted
            except Exception as exc:  # timeout or ChordError: keep what was measured
                result["error"] = f"{type(exc).__name__}: {exc}"
            done_s = time.perf_counter() - t0
            received = sink.settle(n)
        finally:
            stop.set()
            sampler.stop()
        result.update({"received": received, "seconds": round(done_s, 3), "send_call_latency_s": round(call_s, 3),
                       "time_to_first_email_s": round(first.get("first", sampler.first_message_at or 0), 4),
                       "redis_peak_mb": round(sampler.redis_peak_delta / 2**20, 2),
                       "redis_used_before_mb": round(sampler.redis_base / 2**20, 2),
                       "worker_rss_peak_mb": round(groups[0].rss_peak / 2**20, 1),
                       "cpu": summarise_groups(groups, n), "timeline": sampler.timeline,
                       "machine": {**quiet, **foreign_cpu(sampler, groups)},
                       "concurrency": ctx.concurrency, "pool": ctx.pool})
        result.update(_rates(received, done_s, sampler.timeline))
        if received != n and "error" not in result:
            result["error"] = f"the sink counted {received} messages, expected {n}"
    finally:
        Children.stop(worker, grace=15)
        sink.stop()
        client.flushdb()
        client.close()
    return result
