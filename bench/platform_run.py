"""The `platform` variant: our real pipeline (PostgreSQL + Redis + celery worker + beat) into smtp-sink
(or, with `servers` > 1, a pool of sending servers: one smtp-sink each).

`prepare` builds the throwaway database, the campaign and an API key (untimed); `run` starts
the worker and beat, calls `POST /api/v1/campaigns/<id>/send` through the app's WSGI stack
(auth, validation, the service, the enqueue; no socket), and waits until the campaign row says
`sent`, then reads the totals back through `GET /api/v1/campaigns/<id>`.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

import platform_db
from procs import Children, GroupStats, Sampler, foreign_cpu, summarise_groups, tree, wait_for_quiet, watch_first
from sink import Sink, settle
from variants import BIN, Context, _ping_until_ready, _rates, redis_server_pid


@dataclass
class Setup:
    n: int
    db_name: str
    db_url: str
    instance: Path
    secret: str
    knobs: dict
    app: object
    api_key: str
    campaign_id: int
    sample: dict
    setup_s: float


def prepare(ctx: Context, n: int, knobs: dict, database: tuple[str, str] | None = None, dkim: str = "") -> Setup:
    """A migrated database with the audience, campaign and API key; `database` (URL, name) when
    the caller made it (a `--compare` child: its parent drops it, whatever becomes of the child);
    `dkim` (send_bench.py --dkim): active keys of that kind for the campaign's From domain."""
    started = time.perf_counter()
    db_url, name = database or platform_db.create_database()
    instance = Path(tempfile.mkdtemp(prefix="nlb-", dir=ctx.workdir))
    secret = secrets.token_urlsafe(48)  # production refuses weak keys
    env = platform_db.platform_env(db_url, ctx.platform_redis, instance, 25, secret, knobs, ctx.app_root)
    setup = Setup(n, name, db_url, instance, secret, knobs, None, "", 0, {}, 0.0)
    if database is None:
        ctx.databases.append(name)  # the driver drops it whatever happens next
    platform_db.migrate(env, ctx.app_root)
    os.environ.update(env)
    from sqlalchemy import text

    from newsletter import create_app
    from newsletter.extensions import db

    app = create_app()
    with app.app_context():
        list_id = platform_db.make_audience(n)
        setup.campaign_id = platform_db.make_campaign(list_id)
        if dkim:
            platform_db.make_dkim_keys(dkim)
        setup.sample = platform_db.sample_message(setup.campaign_id)
        setup.api_key = platform_db.make_api_key()
        db.session.commit()
        # As the platform's own import does at its end (services/audience/imports.py): the audience
        # was just bulk-loaded, and the planner's statistics are refreshed before anything plans on
        # them. Plain SQL, so that a `--compare` ref's code gets the same database.
        db.session.execute(text("ANALYZE subscribers, subscriptions"))
        db.session.execute(text("SELECT pg_stat_force_next_flush()"))  # setup's stats land before the run's
        db.session.commit()
        # pg_stat_force_next_flush() reaches only its own backend: closing the pool makes every backend
        # that wrote the setup flush its counters as it exits, so none of them land in the run's deltas.
        db.session.remove()
        db.engine.dispose()
    setup.app = app
    setup.setup_s = round(time.perf_counter() - started, 2)
    return setup


def _uptime() -> str:
    """`uptime`'s line: the machine's load around a run (other sessions share these cores)."""
    done = subprocess.run(["uptime"], capture_output=True, text=True)
    return done.stdout.strip()


def _every(seconds: float, fetch):
    """`fetch()` at most once per `seconds` (the backend pid list changes rarely; the sampler asks 10x/s)."""
    cache = {"at": -1e9, "value": []}

    def cached():
        if time.perf_counter() - cache["at"] >= seconds:
            cache["value"], cache["at"] = fetch(), time.perf_counter()
        return cache["value"]
    return cached


LEDGER_TABLES = ("deliveries", "delivery_attempts")
NOT_COUNTED_REDIS = ("info",)  # the bench's own sampler asks INFO ten times a second


def _commandstats(client: redis.Redis) -> dict[str, dict[str, int]]:
    """INFO commandstats: calls and µs by command, server-wide (hence --own-redis for exact counts)."""
    return {name.removeprefix("cmdstat_"): {"calls": int(v["calls"]), "usec": int(v["usec"])}
            for name, v in client.info("commandstats").items()}


def _redis_ops(before: dict, after: dict, n: int, clients: int) -> dict:
    """Commands the Redis server ran during the run, by command and per message (INFO not counted)."""
    delta = {k: {f: v[f] - before.get(k, {}).get(f, 0) for f in ("calls", "usec")} for k, v in after.items()}
    delta = {k: v for k, v in sorted(delta.items()) if v["calls"] and k not in NOT_COUNTED_REDIS}
    calls = sum(v["calls"] for v in delta.values())
    usec = sum(v["usec"] for v in delta.values())
    return {"by_command": delta, "calls": calls, "usec": usec, "per_message": round(calls / n, 4),
            "usec_per_message": round(usec / n, 3), "connected_clients_after": clients}


def per_message(result: dict, n: int, tables: dict) -> dict:
    """The run's costs per message: CPU ms by group, commits, row writes (pg_stat_user_tables), Redis ops."""
    cpu = result.get("cpu", {})

    def ms(group: str) -> float | None:
        return round(cpu[group]["cpu_s"] / n * 1000, 4) if group in cpu else None

    return {"worker_cpu_ms": ms("worker"), "postgres_cpu_ms": ms("postgres_backends"),
            "redis_cpu_ms": ms("redis_server"), "smtp_sink_cpu_ms": ms("smtp_sink"),
            "xact_commit": round(result.get("postgres", {}).get("xact_commit", 0) / n, 4),
            "redis_ops": result.get("redis_ops", {}).get("per_message"), "tables": tables}


def _status(setup: Setup) -> str:
    from sqlalchemy import select

    from newsletter.extensions import db
    from newsletter.models import Campaign

    db.session.rollback()
    value = db.session.scalar(select(Campaign.status).where(Campaign.id == setup.campaign_id))
    db.session.commit()
    return value.value


def _ledger(setup: Setup) -> dict:
    from newsletter.extensions import db
    from newsletter.models import Campaign

    db.session.rollback()
    campaign = db.session.get(Campaign, setup.campaign_id)
    counts = {k: v for k, v in platform_db.service("ledger").counts(setup.campaign_id).items() if v}
    times = {}
    if campaign.started_at:
        for key in ("snapshot_at", "finished_at"):
            value = getattr(campaign, key)
            if value is not None:
                since_start = (value - campaign.started_at).total_seconds()
                times[f"{key.replace('_at', '')}_after_start_s"] = round(since_start, 3)
    return {"deliveries": counts, "campaign_status": campaign.status.value, "status_reason": campaign.status_reason,
            **times}


def _start_profilers(ctx: Context, pid: int, n: int) -> list[tuple[subprocess.Popen, Path]]:
    stem = f"profile-{ctx.tag}-n{n}"
    specs = [("svg", ["--format", "flamegraph"], ctx.profile_dir / f"{stem}.svg"),
             ("cpu", ["--format", "raw", "--nolineno"], ctx.profile_dir / f"{stem}-cpu.txt"),
             ("wall", ["--format", "raw", "--nolineno", "--idle"], ctx.profile_dir / f"{stem}-wall.txt")]
    started = []
    for name, fmt, out in specs:
        argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
                "--rate", "50", *fmt, "-o", str(out)]
        started.append((ctx.children.start(argv, ctx.workdir / f"py-spy-{name}-{n}.log"), out))
    time.sleep(1.0)  # py-spy attaches to every process of the tree before t0
    return started


def _stop_profilers(profilers: list[tuple[subprocess.Popen, Path]]) -> list[str]:
    for proc, _ in profilers:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # py-spy writes its output on SIGINT
    for proc, _ in profilers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            Children.stop(proc, grace=5)
    return [str(out) for _, out in profilers if out.exists()]


class Sinks:
    """Several smtp-sinks read as one (a pool of sending servers): counts add up."""

    def __init__(self, children: Children, workdir: Path, name: str, count: int) -> None:
        self.sinks = [Sink(children, workdir, f"{name}-{i}" if i else name) for i in range(max(1, count))]
        self.port = self.sinks[0].port  # the Settings page's server (MAIL_PORT)

    def count(self) -> int:
        return sum(sink.count() for sink in self.sinks)

    def counts(self) -> list[int]:
        return [sink.count() for sink in self.sinks]

    def pids(self) -> list[int]:
        return [sink.proc.pid for sink in self.sinks]

    def settle(self, expected: int, timeout: float = 5) -> int:
        return settle(self.count, expected, timeout)

    def stop(self) -> None:
        for sink in self.sinks:
            sink.stop()


def _add_servers(app, sinks: Sinks) -> None:
    """The sinks after the first join the pool "default" as sending servers (the first is MAIL_PORT's)."""
    from newsletter.services.delivery import servers

    with app.app_context():
        for i, sink in enumerate(sinks.sinks[1:], start=2):
            servers.save({"name": f"sink-{i}", "pool": "default", "host": "127.0.0.1", "port": sink.port,
                          "tls": "none"})


def run(ctx: Context, setup: Setup, timeout: float, profile: bool, servers: int = 1) -> dict:
    """`servers`: sending servers in the campaign's pool, one smtp-sink each (1: the Settings server only)."""
    n = setup.n
    client = redis.Redis.from_url(ctx.platform_redis)
    client.flushdb()  # this bench's own database number only
    suffix = f"-{servers}servers" if servers > 1 else ""
    sink = Sinks(ctx.children, ctx.workdir, f"platform-{n}{suffix}", servers)
    env = platform_db.platform_env(setup.db_url, ctx.platform_redis, setup.instance, sink.port, setup.secret,
                                   setup.knobs, ctx.app_root)
    if servers > 1:
        _add_servers(setup.app, sink)
    hostname = f"bench-{uuid.uuid4().hex[:6]}"
    worker = ctx.children.start(
        [str(BIN / "celery"), "-A", "celery_worker", "worker", "--queues", "bulk,default,transactional",
         "--concurrency", str(ctx.concurrency), "--pool", ctx.pool, "--loglevel", "WARNING",
         "--hostname", f"{hostname}@%h", "--without-mingle", "--without-gossip"],
        ctx.workdir / f"platform-worker-{n}{suffix}.log", env=env, cwd=ctx.app_root)
    beat = ctx.children.start(
        [str(BIN / "celery"), "-A", "celery_worker", "beat", "--loglevel", "WARNING",
         "--schedule", str(setup.instance / "beat-schedule")],
        ctx.workdir / f"platform-beat-{n}{suffix}.log", env=env, cwd=ctx.app_root)
    pg = psycopg.connect(platform_db.ADMIN_URL, autocommit=True)
    result: dict = {"n": n, "knobs": setup.knobs, "concurrency": ctx.concurrency, "pool": ctx.pool,
                    "setup_s": setup.setup_s, "message_bytes": setup.sample.get("bytes"), "servers": servers,
                    "uptime_before": _uptime()}
    profilers: list = []
    try:
        app = setup.app
        celery_app = app.extensions["celery"]
        http, auth = app.test_client(), {"Authorization": f"Bearer {setup.api_key}"}
        # A web process that has served a request before, as a running one has: the send call's
        # time is the call's, not this process's first request (routing, the API key's lookup,
        # the serializers' first use: ~80-100 ms measured on the first email's path).
        http.get(f"/api/v1/campaigns/{setup.campaign_id}", headers=auth)
        result["worker_ready_s"] = round(_ping_until_ready(celery_app, hostname, worker), 2)
        groups = [GroupStats("worker", lambda: [p.pid for p in tree(worker.pid)]),
                  GroupStats("beat", lambda: [p.pid for p in tree(beat.pid)]),
                  GroupStats("smtp_sink", sink.pids),
                  GroupStats("postgres_backends", _every(1.0, lambda: platform_db.backend_pids(pg, setup.db_name))),
                  GroupStats("redis_server", lambda: redis_server_pid(client)),
                  GroupStats("bench_process", lambda: [os.getpid()])]
        if profile and ctx.profile_dir:
            profilers = _start_profilers(ctx, worker.pid, n)
        quiet = wait_for_quiet()
        pg_before, tables_before, _ = platform_db.settled_stats(setup.db_url, setup.db_name, wait_for_backends=False)
        redis_before = _commandstats(client)
        sampler = Sampler(client, groups, sink.count)
        sampler.start()
        stop = threading.Event()
        with app.app_context():
            t0 = time.perf_counter()
            sampler.begin(t0)
            first = watch_first(sink.count, t0, stop)
            try:
                response = http.post(f"/api/v1/campaigns/{setup.campaign_id}/send", headers=auth)
                call_s = time.perf_counter() - t0
                if response.status_code != 202:
                    raise RuntimeError(f"send call answered {response.status_code}: {response.get_data(as_text=True)}")
                status = "sending"
                while time.perf_counter() - t0 < timeout:
                    status = _status(setup)
                    if status != "sending":
                        break
                    time.sleep(0.25)  # one primary-key read a poll: negligible next to the run
                done_s = time.perf_counter() - t0
                received = sink.settle(n)
            finally:
                stop.set()
                sampler.stop()
            result["files"] = _stop_profilers(profilers) if profilers else []
            ledger = _ledger(setup)
            result["api_totals"] = http.get(f"/api/v1/campaigns/{setup.campaign_id}", headers=auth).get_json()["totals"]
        Children.stop(beat, grace=15)
        Children.stop(worker, grace=30)
        redis_after = _commandstats(client)
        clients = int(client.info("clients")["connected_clients"])
        with app.app_context():  # the send call's own writes: its backends flush their counters on exit
            from newsletter.extensions import db

            db.session.remove()
            db.engine.dispose()
        pg_after, tables_after, settled = platform_db.settled_stats(setup.db_url, setup.db_name)
        pg_delta = {k: round(pg_after[k] - pg_before[k], 1) for k in pg_after}
        result["stats_settled"] = settled
        result["redis_ops"] = _redis_ops(redis_before, redis_after, n, clients)
        result.update({"received": received, "received_by_server": sink.counts(), "uptime_after": _uptime(),
                       "seconds": round(done_s, 3), "final_status": status,
                       "send_call_latency_s": round(call_s, 4),
                       "time_to_first_email_s": round(first.get("first", sampler.first_message_at or 0), 4),
                       "redis_peak_mb": round(sampler.redis_peak_delta / 2**20, 2),
                       "redis_used_before_mb": round(sampler.redis_base / 2**20, 2),
                       "worker_rss_peak_mb": round(groups[0].rss_peak / 2**20, 1),
                       "postgres": {**pg_delta, "active_time_s": round(pg_delta["active_time_ms"] / 1000, 2)},
                       "cpu": summarise_groups(groups, n), "timeline": sampler.timeline,
                       "machine": {**quiet, **foreign_cpu(sampler, groups)}, **ledger})
        result.update(_rates(received, done_s, sampler.timeline))
        costs = per_message(result, n, platform_db.table_writes_per_message(tables_before, tables_after, n,
                                                                            LEDGER_TABLES))
        result["per_message"] = costs
        result.update({"pg_cpu_ms_per_msg": costs["postgres_cpu_ms"], "worker_cpu_ms_per_msg": costs["worker_cpu_ms"],
                       "redis_ops_per_msg": costs["redis_ops"],
                       "row_writes_per_msg": costs["tables"]["total"]["writes"],
                       "delivery_writes_per_msg": costs["tables"]["deliveries"]["writes"]})
        if status != "sent":
            result["error"] = f"campaign ended as {status!r} after {done_s:.0f}s (timeout {timeout:.0f}s)"
        elif received != n:
            result["error"] = f"the sink counted {received} messages, expected exactly {n}"
    finally:
        if profilers:
            _stop_profilers(profilers)
        Children.stop(beat, grace=10)
        Children.stop(worker, grace=20)
        sink.stop()
        pg.close()
        client.flushdb()
        client.close()
    return result
