"""Send bench: the SMTP limit, a tutorial Celery sender and our platform, side by side on this machine.

    .venv/bin/python bench/send_bench.py                 # N = 10,000 and 100,000 (what `make bench` runs);
                                                         # the platform tracking off, anonymous, individual
    .venv/bin/python bench/send_bench.py --tracking-modes ""   # the platform in the --tracking mode only
    .venv/bin/python bench/send_bench.py --quick         # N = 2,000 smoke check
    .venv/bin/python bench/send_bench.py --full          # adds N = 1,000,000
    .venv/bin/python bench/send_bench.py --n 50000 --variants platform --profile --tag profile
    .venv/bin/python bench/send_bench.py --variants platform --compare main~3   # today's code vs main~3's
    .venv/bin/python bench/send_bench.py --soak 30       # the soak mode: bench/soak.py (own options, --help)
    .venv/bin/python bench/send_bench.py --variants platform --dkim rsa --tag dkim   # signed vs unsigned
    .venv/bin/python bench/send_bench.py --variants platform --sync-commit --own-redis   # worker commits async vs sync

Writes bench/results/<date>-<commit>[-tag].json and .png and appends a row to
bench/results/README.md. Every process it starts and every database it creates is removed
on the way out, Ctrl-C and failures included. See bench/README.md.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import platform as pyplatform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import psutil  # noqa: E402
import redis  # noqa: E402

import compare  # noqa: E402
import costs  # noqa: E402
import platform_db  # noqa: E402
import platform_run  # noqa: E402
import report  # noqa: E402
from procs import Children  # noqa: E402
from sink import ensure_postfix_tools  # noqa: E402
from variants import Context, run_baseline, run_limit  # noqa: E402

RESULTS = BENCH / "results"
TRACKING_MODES = ("off", "anonymous", "individual")
DEFAULT_MODE = "anonymous"  # the product's TRACKING_DEFAULT: the `platform` figures of a modes run


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", default="10000,100000", help="comma-separated recipient counts (default 10000,100000)")
    p.add_argument("--quick", action="store_true", help="N = 2,000 only: a smoke check")
    p.add_argument("--full", action="store_true", help="also N = 1,000,000")
    p.add_argument("--variants", default="limit,baseline,platform")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 2)),
                   help="worker processes, the same for baseline and platform (default 2 = cores)")
    p.add_argument("--pool", default="prefork")
    p.add_argument("--tracking", choices=("default", "off", "anonymous", "individual"), default="default",
                   help="the bench campaign's open/click tracking: the product default (TRACKING_DEFAULT, "
                        "anonymous) or a mode; code from before tracking existed sends untracked whatever this says")
    p.add_argument("--dkim", choices=("rsa", "rsa3072", "ed25519", "rsa+ed25519"),
                   help="after each N's (unsigned) platform run, run it again with active DKIM keys of this kind "
                        "(variant platform_dkim), and time the signature alone per message; with --compare: "
                        "every run, new and old, signed")
    p.add_argument("--tracking-modes", default="off,anonymous,individual",
                   help="the in-process platform once per mode in each round, interleaved (issue 14: sending "
                        "with tracking within 10%% of tracking off, in one run); the `platform` figures are then "
                        "the product default's (anonymous). \"\" for one mode, --tracking's")
    p.add_argument("--sync-commit", action="store_true",
                   help="the platform with the worker's commits asynchronous (today's default) and synchronous "
                        "(WORKER_SYNCHRONOUS_COMMIT=true), interleaved over --repeat rounds; the `platform` figures "
                        "are the asynchronous ones. Tracking in --tracking's mode only")
    p.add_argument("--own-redis", action="store_true",
                   help="start a Redis server of the bench's own (no persistence) for the platform and baseline, "
                        "so that its command counts (INFO commandstats) are this run's alone")
    p.add_argument("--batch-size", help="platform SEND_BATCH_SIZE (platform default 400)")
    p.add_argument("--smtp-sessions", help="platform SEND_SESSIONS per worker process (platform default 16)")
    p.add_argument("--window", help="platform SEND_WINDOW (platform default 5000)")
    p.add_argument("--prefetch", help="platform WORKER_PREFETCH_MULTIPLIER (platform default 4)")
    p.add_argument("--servers", default="1",
                   help="comma-separated counts of sending servers (one smtp-sink each) in the platform's pool: "
                        "1 is the `platform` variant; each other count k adds a variant `platform+kservers` run "
                        "right after it on a fresh database (e.g. --servers 1,2)")
    p.add_argument("--sessions", type=int, default=16, help="smtp-source parallel sessions for `limit`")
    p.add_argument("--baseline-max-seconds", type=float, default=600,
                   help="skip a baseline projected (from a smaller N) to take longer; it is capped and noted")
    p.add_argument("--seconds-per-1000", type=float, default=12.0,
                   help="timeout of a variant: 120 s + this per 1,000 messages")
    p.add_argument("--profile", action="store_true", help="py-spy the platform worker tree during its run")
    p.add_argument("--compare", metavar="REF",
                   help="also run the platform at git ref REF (a temporary worktree, the same venv) as variant "
                        "platform@<commit>, interleaved with today's; both in the result files, with new/old")
    p.add_argument("--repeat", type=int, default=2,
                   help="with --compare: rounds of (today's, REF's) platform run per N (default 2); medians compared")
    p.add_argument("--tag", default="", help="suffix for the result files (e.g. profile, tune-b500)")
    p.add_argument("--refresh", metavar="JSON",
                   help="redraw the PNG of an earlier results file, put its figures in bench/README.md, exit")
    p.add_argument("--soak", metavar="MINUTES",
                   help="the soak mode instead (bench/soak.py: campaigns and notifications for MINUTES, memory "
                        "checked for growth); `bench/soak.py --help` lists its options")
    p.add_argument("--baseline-redis", default="redis://127.0.0.1:6379/9")
    p.add_argument("--platform-redis", default="redis://127.0.0.1:6379/10")
    args = p.parse_args()
    ns = [2000] if args.quick else [int(x.replace("_", "")) for x in args.n.split(",") if x.strip()]
    if args.full and 1_000_000 not in ns:
        ns.append(1_000_000)
    args.ns = sorted(ns)
    args.variant_list = [v.strip() for v in args.variants.split(",") if v.strip()]
    try:
        counts = sorted({int(x) for x in args.servers.split(",") if x.strip()})
    except ValueError:
        p.error("--servers takes whole numbers, such as 1,2")
    if not counts or counts[0] < 1:
        p.error("--servers takes counts of at least 1")
    args.extra_servers = [k for k in counts if k > 1]
    if args.extra_servers and (args.compare or "platform" not in args.variant_list):
        p.error("--servers needs the `platform` variant and no --compare")
    os.environ["BENCH_TRACKING"] = args.tracking  # read by platform_db.make_campaign, in compare children too
    args.mode_list = [m.strip() for m in args.tracking_modes.split(",") if m.strip()]
    if args.compare or args.sync_commit or "platform" not in args.variant_list:
        args.mode_list = []  # --compare measures code against code, in one tracking mode
    if args.sync_commit and (args.compare or args.extra_servers or args.dkim):
        p.error("--sync-commit runs alone: no --compare, --servers or --dkim with it")
    if any(m not in TRACKING_MODES for m in args.mode_list):
        p.error(f"--tracking-modes takes {', '.join(TRACKING_MODES)}")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.compare and "platform" not in args.variant_list:
        p.error("--compare compares the platform: keep `platform` in --variants")
    return args


def git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
    return done.stdout.strip()


def code_state() -> dict:
    """The measured code: HEAD plus a fingerprint of uncommitted changes to the application."""
    diff = git("diff", "HEAD", "--", "newsletter", "migrations", "celery_worker.py", "wsgi.py")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "newsletter", "migrations")
    return {"commit": git("rev-parse", "--short", "HEAD") or "nogit", "dirty": bool(diff or untracked),
            "app_diff_sha1": hashlib.sha1((diff + untracked).encode()).hexdigest()[:12] if diff or untracked else None}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    client = redis.Redis(host="127.0.0.1", port=6379)
    info = {"nproc": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu_model": model or pyplatform.processor(), "kernel": pyplatform.release(),
            "python": pyplatform.python_version(), "redis": client.info("server")["redis_version"]}
    client.close()
    try:
        import celery
        import psycopg

        info["celery"] = celery.__version__
        with psycopg.connect(platform_db.ADMIN_URL) as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            for setting in ("synchronous_commit", "fsync", "wal_sync_method", "wal_writer_delay",
                            "commit_delay"):  # what a synchronous commit waits for
                info[f"pg_{setting}"] = conn.execute(f"SHOW {setting}").fetchone()[0]
    except Exception:
        pass
    return info


def knobs_from(args: argparse.Namespace) -> dict:
    knobs = {}
    for flag, name in (("batch_size", "SEND_BATCH_SIZE"), ("smtp_sessions", "SEND_SESSIONS"), ("window", "SEND_WINDOW"),
                       ("prefetch", "WORKER_PREFETCH_MULTIPLIER")):
        if getattr(args, flag) is not None:
            knobs[name] = str(getattr(args, flag))
    return knobs


def timeout_for(args: argparse.Namespace, n: int) -> float:
    return 120 + args.seconds_per_1000 * n / 1000


def baseline_projection(results: dict, n: int, limit_s: float) -> dict | None:
    """Skip a baseline that a smaller N says would run longer than `limit_s`."""
    smaller = [r for k, r in results.items() if int(k) < n and not r.get("skipped") and r.get("seconds")]
    if not smaller:
        return None
    ref = max(smaller, key=lambda r: r["n"])
    projected = ref["seconds"] * n / ref["n"]
    if projected <= limit_s:
        return None
    return {"n": n, "skipped": True, "capped_at": ref["n"], "projected_seconds": round(projected),
            "reason": f"projected {projected:.0f}s from N={ref['n']:,} > {limit_s:.0f}s: capped at N={ref['n']:,}"}


def run_one_n(ctx: Context, args: argparse.Namespace, n: int, results: dict,
              old: compare.OldTree | None = None) -> None:
    knobs = knobs_from(args)
    setup = None
    in_process = "platform" in args.variant_list and old is None
    in_process_alone = in_process and not args.mode_list and not args.sync_commit
    if in_process_alone or "limit" in args.variant_list or "baseline" in args.variant_list:
        print(f"[{n:,}] preparing the platform database and campaign ...", flush=True)
        setup = platform_run.prepare(ctx, n, knobs)
        print(f"[{n:,}] ready in {setup.setup_s}s; message {setup.sample['bytes']} bytes "
              f"({setup.sample['source']})", flush=True)
        results["message"] = {"bytes": setup.sample["bytes"], "source": setup.sample["source"]}
    try:
        if "limit" in args.variant_list:
            r = run_limit(ctx, n, setup.sample["bytes"], timeout_for(args, n))
            results["limit"][str(n)] = r
            print(f"[{n:,}] limit: {r.get('msgs_per_s')} msgs/s {r.get('error', '')}", flush=True)
        if "baseline" in args.variant_list:
            skip = baseline_projection(results["baseline"], n, args.baseline_max_seconds)
            if skip:
                r = skip
            else:
                r = run_baseline(ctx, n, setup.sample["template"],
                                 min(timeout_for(args, n), args.baseline_max_seconds * 1.5 + 60))
            results["baseline"][str(n)] = r
            print(f"[{n:,}] baseline: {r.get('msgs_per_s', r.get('reason'))} msgs/s {r.get('error', '')}", flush=True)
        if in_process and args.sync_commit:
            if setup is not None:
                _drop(ctx, setup)
                setup = None
            run_sync_modes(ctx, args, n, knobs, results)
        elif in_process and args.mode_list:
            if setup is not None:
                _drop(ctx, setup)  # each mode's run makes its own
                setup = None
            run_tracking_modes(ctx, args, n, knobs, results)
        elif in_process:
            r = platform_run.run(ctx, setup, timeout_for(args, n), args.profile)
            results["platform"][str(n)] = r
            print(f"[{n:,}] platform: {r.get('msgs_per_s')} msgs/s {r.get('error', '')}", flush=True)
            for k in args.extra_servers:
                run_with_servers(ctx, args, n, k, results, knobs)
            if args.dkim:
                setup = run_signed(ctx, args, n, results, setup, knobs)
        elif old is not None:
            run_compared(ctx, args, n, results, old, knobs)
    finally:
        if setup is not None and setup.db_name in ctx.databases:
            _drop(ctx, setup)


def run_signed(ctx: Context, args: argparse.Namespace, n: int, results: dict, unsigned: platform_run.Setup,
               knobs: dict) -> platform_run.Setup:
    """The same campaign again, on a fresh database with active DKIM keys (--dkim); the signature's own
    cost per message measured in this process first. Returns the setup the caller drops."""
    with unsigned.app.app_context():
        cost = platform_db.signing_cost(unsigned.campaign_id, args.dkim)
    results.setdefault("dkim", {})[str(n)] = cost
    print(f"[{n:,}] dkim {args.dkim}: build {cost['build_us']} µs, sign {cost['sign_us']} µs a message", flush=True)
    _drop(ctx, unsigned)
    setup = platform_run.prepare(ctx, n, knobs, dkim=args.dkim)
    r = platform_run.run(ctx, setup, timeout_for(args, n), args.profile)
    results["platform_dkim"][str(n)] = r
    print(f"[{n:,}] platform_dkim: {r.get('msgs_per_s')} msgs/s {r.get('error', '')}", flush=True)
    return setup


def _drop(ctx: Context, setup: platform_run.Setup) -> None:
    with setup.app.app_context():
        from newsletter.extensions import db

        db.session.remove()
        db.engine.dispose()
    platform_db.drop_database(setup.db_name)
    ctx.databases.remove(setup.db_name)


def run_tracking_modes(ctx: Context, args: argparse.Namespace, n: int, knobs: dict, results: dict) -> None:
    """The platform once per tracking mode in each of --repeat rounds, every run on a fresh database
    (its campaign made in that mode); the order turns round each round (A B C, C B A, ...), so no mode
    always runs first or last. Medians per mode, and each mode's rate over tracking off's."""
    runs: dict[str, list[dict]] = {mode: [] for mode in args.mode_list}
    tracking = results.setdefault("tracking", {})
    for round_no in range(1, args.repeat + 1):
        order = args.mode_list if round_no % 2 else list(reversed(args.mode_list))
        for mode in order:
            os.environ["BENCH_TRACKING"] = mode
            print(f"[{n:,}] platform, tracking {mode}, round {round_no} of {args.repeat} ...", flush=True)
            setup = platform_run.prepare(ctx, n, knobs)
            results.setdefault("message", {"bytes": setup.sample["bytes"], "source": setup.sample["source"]})
            try:
                r = platform_run.run(ctx, setup, timeout_for(args, n), args.profile)
            finally:
                _drop(ctx, setup)
            r.update(round=round_no, tracking=mode, message_bytes=setup.sample.get("bytes"))
            runs[mode].append(r)
            print(f"[{n:,}] platform, tracking {mode}, round {round_no}: {r.get('msgs_per_s')} msgs/s "
                  f"{r.get('error', '')[:300]}", flush=True)
            summaries = {m: compare.summarise(rs) for m, rs in runs.items() if rs}
            tracking[str(n)] = {"modes": summaries, "order": "rounds of " + ", ".join(args.mode_list)
                                + ", reversed every other round", "ratios": tracking_ratios(summaries)}
    os.environ["BENCH_TRACKING"] = args.tracking
    results["platform"][str(n)] = tracking[str(n)]["modes"].get(DEFAULT_MODE) or \
        tracking[str(n)]["modes"][args.mode_list[0]]
    ratios = tracking[str(n)]["ratios"]
    print(f"[{n:,}] tracking: " + ", ".join(f"{k} {v}" for k, v in ratios.items()), flush=True)


SYNC_MODES = {"async": "false", "sync": "true"}  # WORKER_SYNCHRONOUS_COMMIT


def run_sync_modes(ctx: Context, args: argparse.Namespace, n: int, knobs: dict, results: dict) -> None:
    """The platform with the worker's commits asynchronous (today) and synchronous, --repeat rounds,
    the order turned round every other round, each run on a fresh database; medians per mode."""
    runs: dict[str, list[dict]] = {mode: [] for mode in SYNC_MODES}
    entry = results.setdefault("sync_commit", {})
    for round_no in range(1, args.repeat + 1):
        order = list(SYNC_MODES) if round_no % 2 else list(reversed(SYNC_MODES))
        for mode in order:
            print(f"[{n:,}] platform, worker commits {mode}, round {round_no} of {args.repeat} ...", flush=True)
            setup = platform_run.prepare(ctx, n, {**knobs, "WORKER_SYNCHRONOUS_COMMIT": SYNC_MODES[mode]})
            results.setdefault("message", {"bytes": setup.sample["bytes"], "source": setup.sample["source"]})
            try:
                r = platform_run.run(ctx, setup, timeout_for(args, n), args.profile)
            finally:
                _drop(ctx, setup)
            r.update(round=round_no, commits=mode)
            runs[mode].append(r)
            print(f"[{n:,}] platform, commits {mode}, round {round_no}: {r.get('msgs_per_s')} msgs/s, "
                  f"PostgreSQL {r.get('pg_cpu_ms_per_msg')} ms a message {r.get('error', '')[:300]}", flush=True)
            summaries = {m: compare.summarise(rs) for m, rs in runs.items() if rs}
            entry[str(n)] = {"modes": summaries, "ratios": {
                f"sync/async {field}": report.ratio(summaries.get("sync", {}).get(field),
                                                    summaries.get("async", {}).get(field))
                for field in ("msgs_per_s", "steady_msgs_per_s", "pg_cpu_ms_per_msg", "worker_cpu_ms_per_msg")}}
    results["platform"][str(n)] = entry[str(n)]["modes"]["async"]


def tracking_ratios(summaries: dict[str, dict]) -> dict:
    """Each mode's median msgs/s over tracking off's (issue 14's goal: every one >= 0.9)."""
    off = summaries.get("off", {}).get("msgs_per_s")
    out: dict = {}
    for mode, summary in summaries.items():
        if mode != "off" and off and summary.get("msgs_per_s"):
            out[f"{mode}/off"] = round(summary["msgs_per_s"] / off, 4)
            out[f"{mode}/off steady"] = report.ratio(summary.get("steady_msgs_per_s"),
                                                     summaries["off"].get("steady_msgs_per_s"))
    if out:
        out["within_10_percent"] = all(v >= 0.9 for k, v in out.items() if not k.endswith("steady"))
    return out


def servers_label(k: int) -> str:
    return f"platform+{k}servers"


def run_with_servers(ctx: Context, args: argparse.Namespace, n: int, k: int, results: dict, knobs: dict) -> None:
    """The platform again, on a fresh database and campaign, through a pool of `k` sending servers."""
    setup = platform_run.prepare(ctx, n, knobs)
    try:
        r = platform_run.run(ctx, setup, timeout_for(args, n), False, servers=k)
        results[servers_label(k)][str(n)] = r
        print(f"[{n:,}] {servers_label(k)}: {r.get('msgs_per_s')} msgs/s, by server {r.get('received_by_server')} "
              f"{r.get('error', '')}", flush=True)
    finally:
        _drop(ctx, setup)


def run_compared(ctx: Context, args: argparse.Namespace, n: int, results: dict, old: compare.OldTree,
                 knobs: dict) -> None:
    """Today's platform and the old ref's, A B A B over --repeat rounds, each in a child process."""
    runs: dict[str, list[dict]] = {"platform": [], old.label: []}
    for round_no in range(1, args.repeat + 1):
        for label, root in (("platform", ROOT), (old.label, old.path)):
            print(f"[{n:,}] {label}, round {round_no} of {args.repeat} ...", flush=True)
            tag = f"{ctx.tag}-{label.replace('@', '-')}-r{round_no}"
            r = compare.run_in_child(ctx, root, label, n, knobs, timeout_for(args, n), args.profile, round_no, tag,
                                     dkim=args.dkim or "")
            runs[label].append(r)
            results[label][str(n)] = compare.summarise(runs[label])  # kept if a later run is interrupted
            print(f"[{n:,}] {label}, round {round_no}: {r.get('msgs_per_s')} msgs/s "
                  f"(other load {r.get('machine', {}).get('not_measured_cpu_s')} CPU s) "
                  f"{r.get('error', '')[:300]}", flush=True)
    if "message" not in results and runs["platform"][0].get("message_bytes"):
        results["message"] = {"bytes": runs["platform"][0]["message_bytes"],
                              "source": runs["platform"][0].get("message_source")}
    ratio = compare.ratios(results["platform"][str(n)], results[old.label][str(n)])
    print(f"[{n:,}] new/old {ratio['new_over_old']} (medians {ratio['new_msgs_per_s']} / {ratio['old_msgs_per_s']})",
          flush=True)


def assemble(args: argparse.Namespace, results: dict, state: dict, started: datetime,
             old: compare.OldTree | None = None) -> dict:
    payload = {"date": started.strftime("%Y-%m-%d"), "started_at": started.isoformat(timespec="seconds"),
               "commit": state["commit"], "dirty": state["dirty"], "app_diff_sha1": state["app_diff_sha1"],
               "n": args.ns, "tag": args.tag, "machine": machine(), "concurrency": args.concurrency,
               "pool": args.pool, "tracking": args.tracking, "message": results.get("message"),
               "command": " ".join([Path(sys.executable).name, *sys.argv]),
               "notes": ["The platform's send call is POST /api/v1/campaigns/<id>/send with a bearer key, "
                         "through the Flask app's WSGI stack in the bench process (no socket); "
                         "send_call_latency_s times it."]}
    largest = max(args.ns)
    extra = [servers_label(k) for k in args.extra_servers]
    measured = ["limit", "baseline", "platform", *([old.label] if old else []),
                *(["platform_dkim"] if args.dkim and not old else []), *extra]
    for v in measured:
        by_n = results[v]
        ran = [int(k) for k, r in by_n.items() if not r.get("skipped") and r.get("msgs_per_s")]
        entry = {"by_n": by_n, "msgs_per_s": by_n[str(max(ran))]["msgs_per_s"] if ran else None,
                 "msgs_per_s_n": max(ran) if ran else None}
        if ran and max(ran) < largest and str(largest) in by_n:
            entry["capped_at"] = max(ran)
            entry["note"] = by_n[str(largest)].get("reason")
        payload[v] = entry
    p, b, lim = (payload[v]["msgs_per_s"] for v in ("platform", "baseline", "limit"))
    payload["ratios"] = {"platform_over_baseline": report.ratio(p, b), "platform_over_limit": report.ratio(p, lim),
                         "baseline_over_limit": report.ratio(b, lim)}
    payload["ratios_by_n"] = {
        str(n): {"platform_over_baseline": report.ratio(results["platform"].get(str(n), {}).get("msgs_per_s"),
                                                        results["baseline"].get(str(n), {}).get("msgs_per_s")),
                 "platform_over_limit": report.ratio(results["platform"].get(str(n), {}).get("msgs_per_s"),
                                                     results["limit"].get(str(n), {}).get("msgs_per_s"))}
        for n in args.ns}
    if extra:
        payload["variants"] = [v for v in measured if v in args.variant_list or v in extra]
        payload["notes"].append(f"{', '.join(extra)}: the platform through a pool of that many sending servers "
                                "(the Settings page's server and SendingServer rows in the pool `default`), one "
                                "smtp-sink each, run right after `platform` on a fresh database; "
                                "received_by_server says how the messages spread.")
    if args.dkim and old:
        payload["notes"].append(f"--dkim {args.dkim} with --compare: every run, new and old, signed with active keys "
                                "of that kind (the campaign's From domain); no unsigned run.")
    elif args.dkim:
        payload["dkim"] = {"kind": args.dkim, "cost_by_n": results.get("dkim", {}), "by_n": {
            str(n): {"unsigned_msgs_per_s": results["platform"].get(str(n), {}).get("msgs_per_s"),
                     "signed_msgs_per_s": results["platform_dkim"].get(str(n), {}).get("msgs_per_s"),
                     "signed_over_unsigned": report.ratio(results["platform_dkim"].get(str(n), {}).get("msgs_per_s"),
                                                          results["platform"].get(str(n), {}).get("msgs_per_s"))}
            for n in args.ns}}
        payload["notes"].append(f"--dkim {args.dkim}: per N the platform ran unsigned, then (a fresh database, "
                                "the same campaign) with active keys of that kind: variant platform_dkim.")
    if results.get("sync_commit"):
        payload["sync_commit"] = {"modes": SYNC_MODES, "setting": "WORKER_SYNCHRONOUS_COMMIT", "repeat": args.repeat,
                                  "platform_figures_are": "async", "by_n": results["sync_commit"]}
        payload["notes"].append("--sync-commit: per N, rounds of (async, sync) with the order reversed every other "
                                "round, each run on a fresh database; sync = WORKER_SYNCHRONOUS_COMMIT=true (every "
                                "worker COMMIT waits for the WAL flush), async = today's synchronous_commit=off.")
    if args.own_redis:
        payload["notes"].append("--own-redis: the platform's broker and Redis were a redis-server of the bench's "
                                "own (no persistence, like the shared one), so redis_ops counts only this run.")
    if results.get("tracking"):
        payload["tracking_modes"] = {
            "modes": args.mode_list, "repeat": args.repeat, "platform_figures_are": DEFAULT_MODE,
            "by_n": results["tracking"]}
    if old is not None:
        payload["variants"] = [v for v in measured if v in args.variant_list or v == old.label]
        payload["notes"].append("--compare: every platform run (both variants) ran in a child process of the bench "
                                "(bench/compare.py), which made the send call and polled; so did their sampling.")
        payload["compare"] = {
            "ref": old.ref, "commit": old.commit, "subject": old.subject, "variant": old.label,
            "repeat": args.repeat,
            "order": "per N, rounds of (platform, old) one after the other: A B A B; each run in a child "
                     "process with a fresh database migrated by its own code",
            "by_n": {str(n): compare.ratios(results["platform"].get(str(n), {}), results[old.label].get(str(n), {}))
                     for n in args.ns}}
    return payload


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def start_run(name: str, stem_prefix: str, tag: str | None) -> tuple[datetime, dict, str, Path]:
    """What every bench run does first (this one and the soak): the Postfix tools, a SIGTERM
    that cleans up like Ctrl-C, databases a killed run left dropped; then (start time, code
    state, results file stem, a fresh work directory)."""
    ensure_postfix_tools()
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
    leftovers = platform_db.drop_leftovers()
    if leftovers:
        print(f"{name}: dropped databases left by an earlier killed run: {leftovers}")
    started = datetime.now(UTC)
    state = code_state()
    stem = f"{stem_prefix}{started:%Y-%m-%d}-{state['commit']}" + (f"-{tag}" if tag else "")
    RESULTS.mkdir(exist_ok=True)
    return started, state, stem, Path(tempfile.mkdtemp(prefix=f"nl-{name}-"))


def own_redis(children: Children, workdir: Path) -> tuple[str, str]:
    """A redis-server of the bench's own on a free port (stopped with the other children): URLs
    for the baseline (database 9) and the platform (database 10)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    children.start([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                    "--save", "", "--appendonly", "no"], workdir / "redis-server.log")
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    client.close()
    print(f"bench: a Redis server of its own on port {port}", flush=True)
    return f"redis://127.0.0.1:{port}/9", f"redis://127.0.0.1:{port}/10"


def main() -> int:
    if any(a == "--soak" or a.startswith("--soak=") for a in sys.argv[1:]):
        import soak  # its own options (--n is one N there, default 5,000)

        return soak.main(sys.argv[1:])
    args = parse_args()
    if args.refresh:
        import json

        source = Path(args.refresh)
        payload = json.loads(source.read_text())
        report.chart(source.with_suffix(".png"), payload)
        report.update_marked_section(BENCH / "README.md", "figures", report.figures_markdown(payload, source.name))
        return 0
    started, state, stem, workdir = start_run("bench", "", args.tag)
    children = Children()
    if args.own_redis:
        args.baseline_redis, args.platform_redis = own_redis(children, workdir)
    ctx = Context(children, workdir, args.concurrency, args.pool, args.baseline_redis, args.platform_redis,
                  sessions=args.sessions, profile_dir=RESULTS if args.profile else None, tag=stem)
    results: dict = {"limit": {}, "baseline": {}, "platform": {}, "platform_dkim": {},
                     **{servers_label(k): {} for k in args.extra_servers}}
    failed = False
    t = time.perf_counter()
    old = None
    try:
        if args.compare:
            old = compare.checkout(args.compare)
            results[old.label] = {}
            print(f"bench: comparing with {old.label} ({args.compare}: {old.subject}) from {old.path}", flush=True)
        for n in args.ns:
            run_one_n(ctx, args, n, results, old)
    except KeyboardInterrupt:
        print("bench: interrupted; cleaning up", flush=True)
        failed = True
    except Exception:
        import traceback

        traceback.print_exc()
        failed = True
        print(f"bench: failed; logs kept in {workdir}", flush=True)
    finally:
        if not args.own_redis:
            for url in (args.baseline_redis, args.platform_redis):
                client = redis.Redis.from_url(url)
                client.flushdb()  # only the bench's own database numbers
                client.close()
        ctx.children.stop_all()  # its own Redis server too (--own-redis)
        for name in list(ctx.databases):
            platform_db.drop_database(name)
        if old is not None:
            compare.remove(old)
    if not any(results.values()):
        return 1
    payload = assemble(args, results, state, started, old)
    payload["wall_seconds"] = round(time.perf_counter() - t, 1)
    payload["complete"] = not failed
    report.write_json(RESULTS / f"{stem}.json", payload)
    if payload.get("sync_commit"):
        costs.sync_chart(RESULTS / f"{stem}.png", payload)
    else:
        report.chart(RESULTS / f"{stem}.png", payload)
    report.append_readme(RESULTS / "README.md", payload, f"{stem}.json")
    if not args.tag:  # a plain run is the reference: its figures go into bench/README.md
        report.update_marked_section(BENCH / "README.md", "figures", report.figures_markdown(payload, f"{stem}.json"))
    if args.profile:
        write_profile(stem, results)
    if not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"bench: wrote {RESULTS / (stem + '.json')} and .png; ratios {payload['ratios']}")
    return 1 if failed else 0


def profiled_runs(stem: str, results: dict) -> list[tuple[str, str, dict]]:
    """(title, file stem, run) of each platform run: one per N, or per variant, N and round (--compare)."""
    out = []
    for label, by_n in results.items():
        if not label.startswith("platform"):  # "platform" and "platform@<commit>"
            continue
        for n, r in by_n.items():
            if "runs" not in r:
                out.append((f"N={int(n):,}", f"profile-{stem}-n{n}", r))
            for run in r.get("runs", []):
                out.append((f"{label}, N={int(n):,}, run {run.get('round')}",
                            f"profile-{run.get('profile_tag') or stem}-n{n}", run))
    return out


def write_profile(stem: str, results: dict) -> None:
    summaries, files, readme = {}, [], {}
    for title, file_stem, run in profiled_runs(stem, results):
        run_files = run.get("files", [])
        for kind in ("cpu", "wall"):
            raw = RESULTS / f"{file_stem}-{kind}.txt"
            if not raw.exists():
                continue
            report.shrink_raw(raw)
            name = f"{title}, {'on-CPU' if kind == 'cpu' else 'wall clock incl. waiting (--idle)'}"
            summaries[name] = report.profile_summary(raw)
            if run.get("round", 1) == 1:  # bench/README.md shows the first round; the .md file has every run
                readme[name] = summaries[name]
            with open(raw, "rb") as src, gzip.open(f"{raw}.gz", "wb") as dst:  # kept compressed (zcat)
                shutil.copyfileobj(src, dst)
            raw.unlink()
            run_files = [f"{f}.gz" if f == str(raw) else f for f in run_files]
        files += run_files
    if summaries:
        (RESULTS / f"profile-{stem}.md").write_text(report.profile_markdown(summaries, files) + "\n")
        report.update_marked_section(BENCH / "README.md", "profile", report.profile_markdown(readme, files))


if __name__ == "__main__":
    sys.exit(main())
