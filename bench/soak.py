"""Soak mode of the send bench: campaigns back to back plus a stream of notifications, for MINUTES.

    .venv/bin/python bench/soak.py --soak 30                 # what `make soak` runs (not in CI)
    .venv/bin/python bench/soak.py --soak 2 --n 2000         # a smoke check
    .venv/bin/python bench/send_bench.py --soak 5            # the same, through the send bench's entry

The platform runs as in production (Procfile): a bulk worker (`--queues bulk,default`), a
dedicated transactional worker (`--queues transactional`) and beat, on a throwaway PostgreSQL
database and the send bench's Redis database (10). Campaign messages go to one smtp-sink,
notifications to another, so both are counted exactly.

For the duration, the main thread creates a campaign of N recipients and sends it through the
API (`POST /api/v1/campaigns`, `POST /api/v1/campaigns/<id>/send`, Flask test client with a
bearer key), waits until it is `sent`, checks its ledger totals and the sink's count, and
starts the next one. A thread POSTs `/api/v1/notifications` (a stored template, `data`, an
Idempotency-Key) at --notify-rate per second. A sampler records every --sample-every seconds
the RSS of each worker's process tree (and beat's), Redis `used_memory` and key count, queue
lengths, campaigns and notifications by status.

At the end it checks delivery (every campaign `sent` with exactly N at the sink and in the
ledger, every notification `sent`, the sinks' totals) and flatness (median of the first 20 %
of the run after the warm-up against the last 20 %), and writes
bench/results/soak-<date>-<commit>[-tag].json and .png. See bench/README.md, "Soak".
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import psutil  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402

import platform_db  # noqa: E402
import report  # noqa: E402
from procs import Children, tree, wait_for_quiet  # noqa: E402
from sink import Sink  # noqa: E402
from variants import BIN, _ping_until_ready  # noqa: E402

RESULTS = BENCH / "results"
QUEUES = ("bulk", "default", "transactional")
NOTIFY_TEMPLATE = {
    "name": "Soak receipt", "subject": "Your receipt {{ order }}",
    "html": "<p>Hello {{ name }},</p><p>thank you for order <b>{{ order }}</b>: {{ total }}.</p>"
            "<p><a href='{{ link }}'>See your order</a></p>",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--soak", "--minutes", dest="minutes", type=float, default=30.0,
                   help="how long to keep starting campaigns and notifications (default 30)")
    p.add_argument("--n", type=lambda s: int(s.replace("_", "").replace(",", "")), default=5000,
                   help="recipients per campaign (default 5,000)")
    p.add_argument("--notify-rate", type=float, default=5.0, help="notifications POSTed per second (default 5)")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 2)),
                   help="bulk worker processes (default 2 = cores)")
    p.add_argument("--tx-concurrency", type=int, default=2,
                   help="transactional worker processes (default 2, the Procfile's TRANSACTIONAL_CONCURRENCY)")
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples (default 5)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds left out of the flatness comparison (default: 10%% of the run, and at least "
                        "until the first campaign is sent)")
    p.add_argument("--window", type=float, default=0.2,
                   help="share of the measured span compared at each end (default 0.2)")
    p.add_argument("--rss-threshold-pct", type=float, default=10.0,
                   help="PASS if each worker tree's median RSS grew less than this (default 10%%)")
    p.add_argument("--redis-threshold-mb", type=float, default=5.0,
                   help="PASS if Redis used_memory's median grew less than this (default 5 MB)")
    p.add_argument("--seconds-per-1000", type=float, default=12.0,
                   help="a campaign times out after 120 s + this per 1,000 recipients")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/10", help="the send bench's platform database")
    p.add_argument("--tag", default="", help="suffix of the result files; a tagged run leaves bench/README.md alone")
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.n <= 0 or args.notify_rate <= 0 or args.sample_every <= 0:
        p.error("--soak, --n, --notify-rate and --sample-every must be positive")
    return args


# processes -------------------------------------------------------------------------------------

def tree_memory(pid: int | None) -> dict:
    """RSS and USS (bytes) summed over a process and its descendants, with their pids."""
    rss = uss = 0
    pids = []
    for proc in tree(pid) if pid else []:
        try:
            with proc.oneshot():
                try:
                    full = proc.memory_full_info()
                    rss, uss = rss + full.rss, uss + full.uss
                except psutil.AccessDenied:
                    rss += proc.memory_info().rss
            pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return {"rss": rss, "uss": uss, "pids": sorted(pids)}


def celery_argv(*args: str) -> list[str]:
    return [str(BIN / "celery"), "-A", "celery_worker", *args]


# the notification stream -----------------------------------------------------------------------

class Notifier(threading.Thread):
    """POSTs one notification every 1/rate seconds through the API until `stop` is set."""

    def __init__(self, app, auth: dict, template_id: int, rate: float, stop: threading.Event, run_id: str) -> None:
        super().__init__(daemon=True, name="soak-notifier")
        self.app, self.auth, self.template_id, self.rate, self.stop_event = app, auth, template_id, rate, stop
        self.run_id = run_id
        self.accepted: list[tuple[int, datetime, float]] = []  # (id, posted at, call seconds)
        self.errors: list[str] = []
        self.error_count = 0
        self.behind = 0

    def run(self) -> None:
        http = self.app.test_client()
        interval, i = 1.0 / self.rate, 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            i += 1
            body = {"to": f"tx{i:06d}@example.com", "template_id": self.template_id,
                    "data": {"name": f"Person {i}", "order": f"S-{i:06d}", "total": f"{i % 97 + 3}.50 EUR",
                             "link": f"https://example.com/orders/{i}"}}
            posted = datetime.now(UTC)
            started = time.perf_counter()
            try:
                response = http.post("/api/v1/notifications", json=body,
                                     headers={**self.auth, "Idempotency-Key": f"soak-{self.run_id}-{i}"})
                call_s = time.perf_counter() - started
                if response.status_code == 202:
                    self.accepted.append((response.get_json()["id"], posted, call_s))
                else:
                    self._error(f"{response.status_code}: {response.get_data(as_text=True)[:200]}")
            except Exception as exc:  # keep the stream going; the report counts them
                self._error(f"{type(exc).__name__}: {exc}")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            elif delay < -1.0:  # fell behind by a second: do not burst to catch up
                self.behind += 1
                next_at = time.monotonic()

    def _error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < 20:
            self.errors.append(text)


# sampling --------------------------------------------------------------------------------------

class SoakSampler(threading.Thread):
    """Every `every` seconds: memory of the process trees and Redis, queues, progress from the database."""

    def __init__(self, every: float, t0: float, roots: dict, client: redis.Redis, db_url: str, sinks: dict,
                 notifier: Notifier, campaigns: list) -> None:
        super().__init__(daemon=True, name="soak-sampler")
        self.every, self.t0, self.roots, self.redis, self.sinks = every, t0, roots, client, sinks
        self.notifier, self.campaigns = notifier, campaigns
        self.db = psycopg.connect(db_url, autocommit=True)
        self.samples: list[dict] = []
        self.pid_sets: dict[str, list] = {name: [] for name in roots}
        self.errors: list[str] = []
        self._halt = threading.Event()

    def sample(self) -> dict:
        row: dict = {"t": round(time.monotonic() - self.t0, 1)}
        for name, pid in self.roots.items():
            mem = tree_memory(pid)
            row[f"{name}_rss_mb"] = round(mem["rss"] / 2**20, 2)
            row[f"{name}_uss_mb"] = round(mem["uss"] / 2**20, 2)
            row[f"{name}_procs"] = len(mem["pids"])
            seen = self.pid_sets[name]
            if not seen or seen[-1][1] != mem["pids"]:
                seen.append((row["t"], mem["pids"]))
        row["bench_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 2)
        memory = self.redis.info("memory")
        row["redis_used_mb"] = round(int(memory["used_memory"]) / 2**20, 3)
        row["redis_rss_mb"] = round(int(memory.get("used_memory_rss", 0)) / 2**20, 2)
        row["redis_keys"] = int(self.redis.dbsize())
        keyspace = self.redis.info("keyspace")
        row["redis_keys_all_dbs"] = sum(int(v.get("keys", 0)) for v in keyspace.values() if isinstance(v, dict))
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(queue)
            for queue, depth in zip(QUEUES, pipe.execute(), strict=True):
                row[f"queue_{queue}"] = int(depth)
        rows = self.db.execute("SELECT status, count(*) FROM campaigns GROUP BY status").fetchall()
        row["campaigns"] = {status: count for status, count in rows}
        rows = self.db.execute("SELECT status, count(*) FROM notifications GROUP BY status").fetchall()
        row["notifications"] = {status: count for status, count in rows}
        row["notifications_posted"] = len(self.notifier.accepted)
        row["campaigns_done"] = sum(1 for c in self.campaigns if c.get("finished_t") is not None)
        for name, sink in self.sinks.items():
            row[f"sink_{name}"] = sink.count()
        self.samples.append(row)
        return row

    def run(self) -> None:
        next_at = time.monotonic()
        while not self._halt.is_set():
            try:
                self.sample()
            except Exception as exc:  # one bad sample must not end the soak
                if len(self.errors) < 20:
                    self.errors.append(f"t={time.monotonic() - self.t0:.0f}s {type(exc).__name__}: {exc}")
            next_at += self.every
            self._halt.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=30)
        self.db.close()


# campaigns -------------------------------------------------------------------------------------

def campaign_status(conn: psycopg.Connection, campaign_id: int) -> str:
    row = conn.execute("SELECT status FROM campaigns WHERE id = %s", (campaign_id,)).fetchone()
    return row[0] if row else "missing"


def run_campaign(http, auth: dict, conn: psycopg.Connection, sink: Sink, list_id: int, index: int, n: int,
                 t0: float, timeout: float) -> dict:
    """Create and send one campaign through the API; wait until it is done; check ledger and sink."""
    before = sink.count()
    started = time.monotonic()
    created = http.post("/api/v1/campaigns", headers=auth, json={
        "name": f"Soak campaign {index}", "subject": platform_db.SUBJECT, "from_name": "Soak Sender",
        "from_email": "news@example.com", "html": platform_db.HTML, "list_ids": [list_id]})
    if created.status_code != 201:
        raise RuntimeError(f"POST /campaigns answered {created.status_code}: {created.get_data(as_text=True)[:300]}")
    campaign_id = created.get_json()["id"]
    call = time.perf_counter()
    sent = http.post(f"/api/v1/campaigns/{campaign_id}/send", headers=auth)
    call_s = time.perf_counter() - call
    if sent.status_code != 202:
        raise RuntimeError(f"POST /campaigns/{campaign_id}/send answered {sent.status_code}: "
                           f"{sent.get_data(as_text=True)[:300]}")
    status = campaign_status(conn, campaign_id)
    while status in ("draft", "scheduled", "sending") and time.monotonic() - started < timeout:
        time.sleep(0.25)
        status = campaign_status(conn, campaign_id)
    finished = time.monotonic()
    at_sink = sink.settle(before + n) - before
    totals = http.get(f"/api/v1/campaigns/{campaign_id}", headers=auth).get_json()["totals"]
    result = {"index": index, "id": campaign_id, "status": status, "started_t": round(started - t0, 2),
              "finished_t": round(finished - t0, 2), "seconds": round(finished - started, 2),
              "send_call_s": round(call_s, 4), "totals": totals, "received": at_sink}
    problems = []
    if status != "sent":
        problems.append(f"ended as {status!r} after {finished - started:.0f}s")
    if totals.get("sent") != n or totals.get("recipients") != n or any(
            totals.get(k) for k in ("failed", "cancelled", "pending", "skipped")):
        problems.append(f"ledger totals {totals}, expected {n} sent")
    if at_sink != n:
        problems.append(f"the sink counted {at_sink}, expected exactly {n}")
    if problems:
        result["error"] = "; ".join(problems)
    return result


# analysis --------------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def slope_per_hour(samples: list[dict], key: str, start: float, end: float) -> float | None:
    """Least-squares slope of `key` over [start, end], per hour."""
    points = [(s["t"], s[key]) for s in samples if start <= s["t"] <= end and key in s]
    if len(points) < 3:
        return None
    mt = sum(t for t, _ in points) / len(points)
    mv = sum(v for _, v in points) / len(points)
    var = sum((t - mt) ** 2 for t, _ in points)
    return round(sum((t - mt) * (v - mv) for t, v in points) / var * 3600, 2) if var else None


def flatness(samples: list[dict], key: str, start: float, end: float, share: float) -> dict:
    span = end - start
    first = [s[key] for s in samples if start <= s["t"] <= start + share * span and key in s]
    last = [s[key] for s in samples if end - share * span <= s["t"] <= end and key in s]
    if not first or not last:
        return {"error": "too few samples", "first_samples": len(first), "last_samples": len(last)}
    a, b = statistics.median(first), statistics.median(last)
    return {"first_median_mb": round(a, 2), "last_median_mb": round(b, 2), "growth_mb": round(b - a, 2),
            "growth_pct": round((b - a) / a * 100, 2) if a else None,
            "first_window_s": [round(start, 1), round(start + share * span, 1)],
            "last_window_s": [round(end - share * span, 1), round(end, 1)],
            "first_samples": len(first), "last_samples": len(last),
            "min_mb": round(min(s[key] for s in samples if start <= s["t"] <= end), 2),
            "max_mb": round(max(s[key] for s in samples if start <= s["t"] <= end), 2),
            "slope_mb_per_h": slope_per_hour(samples, key, start, end)}


def notification_outcome(db_url: str, accepted: list[tuple[int, datetime, float]]) -> dict:
    posted = {nid: (at, call) for nid, at, call in accepted}
    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute("SELECT id, status, attempts, created_at, sent_at FROM notifications").fetchall()
    by_status: dict[str, int] = {}
    latencies, queued_to_sent, points, attempts_over_1 = [], [], [], 0
    for nid, status, attempts, created_at, sent_at in rows:
        by_status[status] = by_status.get(status, 0) + 1
        attempts_over_1 += attempts > 1
        if status == "sent" and sent_at is not None and nid in posted:
            latency = (sent_at - posted[nid][0]).total_seconds()
            latencies.append(latency)
            queued_to_sent.append((sent_at - created_at).total_seconds())
            points.append((nid, posted[nid][0], latency))
    calls = [call for _, call in posted.values()]
    ms = lambda v: None if v is None else round(v * 1000, 1)  # noqa: E731
    return {"posted": len(posted), "in_database": len(rows), "by_status": by_status,
            "retried": attempts_over_1, "unsent_ids": sorted(nid for nid, status, *_ in rows if status != "sent")[:50],
            "latency_ms": {"p50": ms(percentile(latencies, 0.5)), "p95": ms(percentile(latencies, 0.95)),
                           "p99": ms(percentile(latencies, 0.99)), "max": ms(max(latencies) if latencies else None)},
            "created_to_sent_ms": {"p50": ms(percentile(queued_to_sent, 0.5)),
                                   "p95": ms(percentile(queued_to_sent, 0.95))},
            "post_call_ms": {"p50": ms(percentile(calls, 0.5)), "p95": ms(percentile(calls, 0.95))},
            "_points": points}


def redis_breakdown(client: redis.Redis, sample_per_class: int = 200) -> dict:
    """Keys of the bench's Redis database by kind, with memory estimated from a sample of each."""
    classes: dict[str, list[bytes]] = {}
    for key in client.scan_iter(count=1000):
        name = key.decode(errors="replace")
        kind = ("celery-task-meta" if name.startswith("celery-task-meta-") else
                "celery-taskset-meta (chord counters)" if name.startswith("celery-taskset-meta-") else
                "_kombu.binding" if name.startswith("_kombu.binding.") else
                name if name in QUEUES or name.startswith("unacked") else name.split(":", 1)[0])
        classes.setdefault(kind, []).append(key)
    out = {}
    for kind, keys in sorted(classes.items(), key=lambda kv: -len(kv[1])):
        sample = keys[:sample_per_class]
        sizes = [client.memory_usage(k) or 0 for k in sample]
        avg = sum(sizes) / len(sizes) if sizes else 0
        out[kind] = {"keys": len(keys), "avg_bytes": round(avg), "est_mb": round(avg * len(keys) / 2**20, 3)}
    return out


def redis_ttl_sample(client: redis.Redis, prefix: str = "celery-task-meta-*") -> int | None:
    for key in client.scan_iter(match=prefix, count=1000):
        return int(client.ttl(key))
    return None


# report ----------------------------------------------------------------------------------------

def chart(path: Path, payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = payload["samples"]
    if not samples:
        return
    ts = [s["t"] / 60 for s in samples]
    fig, (mem, red, lat) = plt.subplots(3, 1, figsize=(13, 10), sharex=True,
                                       gridspec_kw={"height_ratios": [3, 2, 2]})
    colours = {"bulk_worker": "#1971c2", "tx_worker": "#e8590c", "beat": "#868e96"}
    labels = {"bulk_worker": "bulk worker tree (bulk,default)", "tx_worker": "transactional worker tree",
              "beat": "beat"}
    flat = payload.get("flatness", {})
    growth = lambda r: (f": {r['growth_mb']:+.1f} MB ({r['growth_pct']:+.1f} %)"  # noqa: E731
                        if r and r.get("growth_pct") is not None else "")
    for name in ("bulk_worker", "tx_worker", "beat"):
        key = f"{name}_rss_mb"
        result = flat.get(key)
        if any(key in s for s in samples):
            mem.plot(ts, [s.get(key) for s in samples], "-" if name != "beat" else ":", color=colours[name],
                     label=labels[name] + growth(result))
        if result and "first_median_mb" in result:
            for window, value in ((result["first_window_s"], result["first_median_mb"]),
                                  (result["last_window_s"], result["last_median_mb"])):
                mem.hlines(value, window[0] / 60, window[1] / 60, colors=colours[name], linewidth=3, alpha=0.6)
    mem.set_ylabel("RSS MB (process tree)")
    mem.set_ylim(bottom=0)
    result = flat.get("redis_used_mb")
    red.plot(ts, [s["redis_used_mb"] for s in samples], color="#c2255c", label="Redis used_memory" + growth(result))
    if result and "first_median_mb" in result:
        for window, value in ((result["first_window_s"], result["first_median_mb"]),
                              (result["last_window_s"], result["last_median_mb"])):
            red.hlines(value, window[0] / 60, window[1] / 60, colors="#c2255c", linewidth=3, alpha=0.6)
    red.set_ylabel("Redis used_memory MB")
    keys = red.twinx()
    keys.plot(ts, [s["redis_keys"] for s in samples], "--", color="#5f3dc4", alpha=0.6, label="keys in db")
    keys.set_ylabel("keys in the bench's Redis db")
    points = payload.get("notification_points") or []
    if points:
        lat.scatter([p[0] / 60 for p in points], [p[1] for p in points], s=3, alpha=0.35, color="#2b8a3e",
                    label="notification POST -> sent_at")
        lat.set_yscale("log")
    lat.set_ylabel("notification latency ms (log)")
    lat.set_xlabel("minutes since the start")
    warm = payload.get("warmup_s")
    for ax in (mem, red, lat):
        if warm:
            ax.axvspan(0, warm / 60, color="#adb5bd", alpha=0.2, lw=0)
        for c in payload["campaigns"]:
            if c.get("finished_t") is not None:
                ax.axvline(c["finished_t"] / 60, color="#e03131" if c.get("error") else "#adb5bd", lw=0.6,
                           alpha=0.7)
        ax.grid(alpha=0.3)
    mem.plot([], [], color="#adb5bd", lw=0.6, label="a campaign finished (red: failed a check)")
    mem.legend(fontsize=8, loc="lower right")
    red.legend(loc="upper left", fontsize=8)
    keys.legend(loc="lower right", fontsize=8)
    if points:
        lat.legend(fontsize=8, loc="upper right")
    verdict = payload.get("verdict", {})
    fig.suptitle(f"Soak {payload['minutes']:g} min @ {payload['commit']} — {len(payload['campaigns'])} campaigns × "
                 f"{payload['n']:,}, {payload['notifications'].get('posted', 0):,} notifications — "
                 f"{verdict.get('result', '?')} (grey: warm-up; bars: medians compared)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(payload: dict, json_name: str) -> str:
    flat, notes = payload.get("flatness", {}), payload["notifications"]
    verdict = payload.get("verdict", {})
    ok = [c for c in payload["campaigns"] if not c.get("error")]
    lines = [f"Run `{payload['command']}` on {payload['date']} at commit `{payload['commit']}`"
             f"{' (uncommitted changes)' if payload.get('dirty') else ''}: {payload['minutes']:g} min, "
             f"N = {payload['n']:,} per campaign, notifications at {payload['notify_rate']:g}/s, bulk worker "
             f"concurrency {payload['concurrency']}, transactional {payload['tx_concurrency']}. "
             f"Files: `results/{json_name}`, `results/{json_name[:-5]}.png`. **{verdict.get('result', '?')}**.",
             "",
             "| check | measured | threshold | result |", "|---|---|---|---|",
             f"| campaigns sent, exactly N in ledger and sink | {len(ok)} of {len(payload['campaigns'])} "
             f"({payload['sinks']['bulk']:,} messages) | all | {'ok' if verdict.get('campaigns_ok') else 'FAIL'} |",
             f"| notifications sent | {notes.get('by_status', {}).get('sent', 0):,} of {notes.get('posted', 0):,} "
             f"posted (sink {payload['sinks']['tx']:,}); POST -> sent p50 {notes['latency_ms']['p50']} ms, "
             f"p95 {notes['latency_ms']['p95']} ms | all | {'ok' if verdict.get('notifications_ok') else 'FAIL'} |"]
    for key, label, limit in (("bulk_worker_rss_mb", "bulk worker RSS (tree)",
                               f"< {payload['thresholds']['rss_growth_pct']:g} %"),
                              ("tx_worker_rss_mb", "transactional worker RSS (tree)",
                               f"< {payload['thresholds']['rss_growth_pct']:g} %"),
                              ("redis_used_mb", "Redis used_memory",
                               f"< {payload['thresholds']['redis_growth_mb']:g} MB"),
                              ("beat_rss_mb", "beat RSS", "(reported)")):
        r = flat.get(key) or {}
        if "first_median_mb" not in r:
            continue
        passed = verdict.get("checks", {}).get(key)
        lines.append(f"| {label}, first → last 20 % | {r['first_median_mb']} → {r['last_median_mb']} MB "
                     f"({r['growth_mb']:+} MB, {r['growth_pct']:+} %) | {limit} | "
                     f"{'–' if passed is None else 'ok' if passed else 'FAIL'} |")
    kinds = payload.get("redis_at_end") or {}
    if kinds:
        top = ", ".join(f"{k} {v['keys']:,} keys ≈ {v['est_mb']} MB" for k, v in list(kinds.items())[:3])
        lines += ["", f"Redis db at the end: {top}."]
    proj = payload.get("redis_projection") or {}
    if proj.get("keys_per_s"):
        lines[-1] += (f" Keys grew {proj['keys_per_s']}/s (Redis used_memory "
                      f"{flat.get('redis_used_mb', {}).get('slope_mb_per_h')} MB/h); "
                      "Celery keeps results RESULT_EXPIRES = "
                      f"{proj['result_expires_s']:,} s, so at this rate the db would hold ≈ "
                      f"{proj['plateau_mb_if_kept_result_expires']:,} MB of them before the first expire.")
    other = payload.get("redis_keys_other_dbs_growth") or {}
    if other.get("growth"):
        lines[-1] += f" Other Redis dbs changed by {other['growth']:+,.0f} keys meanwhile (used_memory is server-wide)."
    cs = payload.get("campaigns_summary") or {}
    if cs:
        lines += ["", f"Campaigns took {cs.get('seconds_p50')} s each (median, max {cs.get('seconds_max')} s), "
                      f"{cs.get('msgs_per_s_overall')} msgs/s over the run; notification latency p99 "
                      f"{notes['latency_ms'].get('p99')} ms, "
                      f"POST call p50 {notes.get('post_call_ms', {}).get('p50')} ms."]
    return "\n".join(lines)


# the run ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from send_bench import machine, start_run

    started_at, state, stem, workdir = start_run("soak", "soak-", args.tag)
    children = Children()
    client = redis.Redis.from_url(args.redis_url)
    stop = threading.Event()
    db_name = app = sampler = notifier = None
    campaigns: list[dict] = []
    failure: str | None = None
    payload: dict = {}
    duration = args.minutes * 60
    campaign_timeout = 120 + args.seconds_per_1000 * args.n / 1000
    try:
        db_url, db_name = platform_db.create_database()
        instance = Path(tempfile.mkdtemp(prefix="nls-", dir=workdir))
        secret = uuid.uuid4().hex
        sinks = {"bulk": Sink(children, workdir, "soak-bulk"), "tx": Sink(children, workdir, "soak-tx")}
        env = platform_db.platform_env(db_url, args.redis_url, instance, sinks["bulk"].port, secret, {})
        env_tx = platform_db.platform_env(db_url, args.redis_url, instance, sinks["tx"].port, secret, {})
        print(f"soak: preparing {db_name} with {args.n:,} subscribers ...", flush=True)
        platform_db.migrate(env)
        os.environ.update(env)
        from newsletter import create_app

        app = create_app()
        with app.app_context():
            list_id = platform_db.make_audience(args.n)
            api_key = platform_db.make_api_key()
        auth = {"Authorization": f"Bearer {api_key}"}
        http = app.test_client()
        made = http.post("/api/v1/templates", json=NOTIFY_TEMPLATE, headers=auth)
        if made.status_code != 201:
            raise RuntimeError(f"POST /templates answered {made.status_code}: {made.get_data(as_text=True)[:300]}")
        template_id = made.get_json()["id"]

        client.flushdb()  # the bench's own database number only
        suffix = uuid.uuid4().hex[:6]
        bulk = children.start(celery_argv("worker", "--queues", "bulk,default", "--concurrency", str(args.concurrency),
                                          "--loglevel", "INFO", "--hostname", f"bulk-{suffix}@%h"),
                              workdir / "worker-bulk.log", env=env, cwd=ROOT)
        tx = children.start(celery_argv("worker", "--queues", "transactional", "--concurrency",
                                        str(args.tx_concurrency), "--loglevel", "INFO",
                                        "--hostname", f"tx-{suffix}@%h"),
                            workdir / "worker-tx.log", env=env_tx, cwd=ROOT)
        beat = children.start(celery_argv("beat", "--loglevel", "INFO", "--schedule", str(instance / "beat-schedule")),
                              workdir / "beat.log", env=env, cwd=ROOT)
        celery_app = app.extensions["celery"]
        ready = {"bulk": _ping_until_ready(celery_app, f"bulk-{suffix}", bulk),
                 "tx": _ping_until_ready(celery_app, f"tx-{suffix}", tx)}
        print(f"soak: workers ready ({', '.join(f'{k} {v:.1f}s' for k, v in ready.items())}); "
              f"waiting for a quiet machine ...", flush=True)
        quiet = wait_for_quiet()

        t0, t0_wall = time.monotonic(), datetime.now(UTC)
        deadline = t0 + duration
        notifier = Notifier(app, auth, template_id, args.notify_rate, stop, suffix)
        sampler = SoakSampler(args.sample_every, t0, {"bulk_worker": bulk.pid, "tx_worker": tx.pid,
                                                      "beat": beat.pid},
                              client, db_url, sinks, notifier, campaigns)
        sampler.sample()  # t = 0
        sampler.start()
        notifier.start()
        print(f"soak: running for {args.minutes:g} min: campaigns of {args.n:,} back to back, "
              f"notifications at {args.notify_rate:g}/s", flush=True)
        progress_at = t0
        with psycopg.connect(db_url, autocommit=True) as conn:
            index = 0
            while time.monotonic() < deadline:
                for proc, name in ((bulk, "bulk worker"), (tx, "transactional worker"), (beat, "beat")):
                    if proc.poll() is not None:
                        raise RuntimeError(f"the {name} exited with {proc.returncode}")
                index += 1
                result = run_campaign(http, auth, conn, sinks["bulk"], list_id, index, args.n, t0, campaign_timeout)
                campaigns.append(result)
                if result.get("error"):
                    print(f"soak: campaign {index}: {result['error']}", flush=True)
                    if result["status"] != "sent":
                        raise RuntimeError(f"campaign {index} did not finish: {result['error']}")
                if time.monotonic() - progress_at >= 30 or time.monotonic() >= deadline:
                    progress_at = time.monotonic()
                    last = sampler.samples[-1] if sampler.samples else {}
                    print(f"soak: {progress_at - t0:5.0f}s  campaigns {len(campaigns)} "
                          f"(last {result['seconds']:.1f}s)  notifications "
                          f"{last.get('notifications', {}).get('sent', 0)}/{len(notifier.accepted)}  "
                          f"RSS bulk {last.get('bulk_worker_rss_mb')} tx {last.get('tx_worker_rss_mb')} MB  "
                          f"Redis {last.get('redis_used_mb')} MB, {last.get('redis_keys')} keys", flush=True)
        run_end = time.monotonic() - t0  # the last campaign may finish after the deadline
        stop.set()
        notifier.join(timeout=30)
        drain_until = time.monotonic() + 120
        with psycopg.connect(db_url, autocommit=True) as conn:
            while time.monotonic() < drain_until:
                left = conn.execute("SELECT count(*) FROM notifications WHERE status NOT IN ('sent', 'failed')"
                                    ).fetchone()[0]
                if not left:
                    break
                time.sleep(0.5)
        sampler.stop()
        redis_kinds = redis_breakdown(client)
        result_ttl = redis_ttl_sample(client)

        notes = notification_outcome(db_url, notifier.accepted)
        points = notes.pop("_points")
        expected_bulk = args.n * len(campaigns)
        sent_n = notes["by_status"].get("sent", 0)
        received = {"bulk": sinks["bulk"].settle(expected_bulk), "tx": sinks["tx"].settle(sent_n)}
        first_done = campaigns[0]["finished_t"] if campaigns else 0.0
        warmup = args.warmup if args.warmup is not None else max(0.1 * run_end, first_done)
        warmup = min(warmup, 0.5 * run_end)
        samples = [s for s in sampler.samples if s["t"] <= run_end]
        keys = ["bulk_worker_rss_mb", "tx_worker_rss_mb", "beat_rss_mb", "bulk_worker_uss_mb", "tx_worker_uss_mb",
                "redis_used_mb", "bench_rss_mb"]
        flat = {k: flatness(samples, k, warmup, run_end, args.window) for k in keys}
        key_growth = {k.replace("_mb", ""): v for k, v in
                      flatness(samples, "redis_keys", warmup, run_end, args.window).items()}
        for s in samples:
            s["redis_keys_other_dbs"] = s["redis_keys_all_dbs"] - s["redis_keys"]
        other_keys = {k.replace("_mb", ""): v for k, v in
                      flatness(samples, "redis_keys_other_dbs", warmup, run_end, args.window).items()}
        meta = redis_kinds.get("celery-task-meta", {})
        expires = int(app.config["CELERY"].get("result_expires") or 0)
        per_s = (key_growth.get("slope_per_h") or 0) / 3600
        redis_projection = {
            "keys_per_s": round(per_s, 2), "result_expires_s": expires,
            "celery_task_meta_avg_bytes": meta.get("avg_bytes"),
            "plateau_mb_if_kept_result_expires": round(per_s * expires * (meta.get("avg_bytes") or 0) / 2**20, 1),
            "note": "Celery results (celery-task-meta-*) live RESULT_EXPIRES seconds; at this rate the db grows "
                    "until the first ones expire, then stays near the plateau."}

        checks = {}
        for k in ("bulk_worker_rss_mb", "tx_worker_rss_mb"):
            checks[k] = flat[k].get("growth_pct") is not None and flat[k]["growth_pct"] < args.rss_threshold_pct
        checks["redis_used_mb"] = flat["redis_used_mb"].get("growth_mb") is not None and \
            flat["redis_used_mb"]["growth_mb"] < args.redis_threshold_mb
        campaigns_ok = bool(campaigns) and not any(c.get("error") for c in campaigns) and \
            received["bulk"] == expected_bulk
        notifications_ok = notes["posted"] > 0 and sent_n == notes["posted"] == notes["in_database"] and \
            received["tx"] == sent_n and notifier.error_count == 0
        memory_ok = all(checks.values())
        verdict = {"result": "PASS" if campaigns_ok and notifications_ok and memory_ok else "FAIL",
                   "memory_flat": memory_ok, "campaigns_ok": campaigns_ok, "notifications_ok": notifications_ok,
                   "checks": checks}
        pid_changes = {name: len(seen) - 1 for name, seen in sampler.pid_sets.items()}
        payload = {
            "kind": "soak", "date": f"{started_at:%Y-%m-%d}", "started_at": started_at.isoformat(timespec="seconds"),
            **state, "tag": args.tag, "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(), "minutes": args.minutes, "run_seconds": round(run_end, 1), "n": args.n,
            "notify_rate": args.notify_rate, "concurrency": args.concurrency, "tx_concurrency": args.tx_concurrency,
            "sample_every_s": args.sample_every, "warmup_s": round(warmup, 1), "window_share": args.window,
            "thresholds": {"rss_growth_pct": args.rss_threshold_pct, "redis_growth_mb": args.redis_threshold_mb},
            "verdict": verdict, "flatness": flat, "redis_keys_growth": key_growth,
            "redis_keys_other_dbs_growth": other_keys, "redis_projection": redis_projection,
            "redis_at_end": redis_kinds, "celery_result_ttl_s_sample": result_ttl,
            "campaigns_summary": {
                "count": len(campaigns), "ok": sum(1 for c in campaigns if not c.get("error")),
                "messages": expected_bulk,
                "seconds_p50": round(statistics.median(c["seconds"] for c in campaigns), 2) if campaigns else None,
                "seconds_max": max((c["seconds"] for c in campaigns), default=None),
                "msgs_per_s_overall": round(expected_bulk / run_end, 1) if run_end else None},
            "campaigns": campaigns, "sinks": received, "expected_at_sinks": {"bulk": expected_bulk, "tx": sent_n},
            "notifications": {**notes, "post_errors": notifier.error_count, "post_error_samples": notifier.errors,
                              "fell_behind": notifier.behind},
            "worker_ready_s": {k: round(v, 2) for k, v in ready.items()}, "machine_before": quiet,
            "pool_process_changes": pid_changes, "sampler_errors": sampler.errors,
            "samples": samples, "samples_after_deadline": [s for s in sampler.samples if s["t"] > run_end],
            "notification_points": [(round((at - t0_wall).total_seconds(), 2), round(lat * 1000, 1))
                                     for _, at, lat in points],
            "complete": True,
        }
    except KeyboardInterrupt:
        failure = "interrupted"
        print("soak: interrupted; cleaning up", flush=True)
    except Exception:
        traceback.print_exc()
        failure = "failed"
        print(f"soak: failed; logs kept in {workdir}", flush=True)
    finally:
        stop.set()
        if notifier is not None and notifier.is_alive():
            notifier.join(timeout=15)
        if sampler is not None and sampler.is_alive():
            try:
                sampler.stop()
            except Exception:
                pass
        children.stop_all()
        if app is not None:
            try:
                with app.app_context():
                    from newsletter.extensions import db

                    db.session.remove()
                    db.engine.dispose()
            except Exception:
                pass
        if db_name:
            platform_db.drop_database(db_name)
        try:
            client.flushdb()  # only the bench's own database number
            client.close()
        except Exception as exc:
            print(f"soak: could not flush {args.redis_url}: {exc}")
    if not payload:
        if campaigns or (sampler is not None and sampler.samples):  # keep what an interrupted run measured
            partial = {"kind": "soak", "complete": False, "failure": failure, "campaigns": campaigns,
                       "samples": sampler.samples if sampler else [], "command": " ".join(sys.argv)}
            report.write_json(RESULTS / f"{stem}-partial.json", partial)
            print(f"soak: wrote {RESULTS / (stem + '-partial.json')}")
        return 1
    report.write_json(RESULTS / f"{stem}.json", payload)
    chart(RESULTS / f"{stem}.png", payload)
    if not args.tag:  # a plain run is the reference: its table goes into bench/README.md
        report.update_marked_section(BENCH / "README.md", "soak", markdown(payload, f"{stem}.json"))
    print(markdown(payload, f"{stem}.json"))
    print(f"soak: wrote {RESULTS / (stem + '.json')} and .png")
    if failure is None:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if payload["verdict"]["result"] == "PASS" else 2


if __name__ == "__main__":
    sys.exit(main())
