"""Tracked redirect and pixel under load: wrk through nginx + gunicorn, on PostgreSQL and Redis (issue 14).

    .venv/bin/python bench/redirect_bench.py               # ~3 minutes
    .venv/bin/python bench/redirect_bench.py --no-profile  # the load runs only

Issue 14's goal on this 2-core machine: >= 3,000 tracked redirects/s with p99 < 50 ms, in the
same run as a static-file baseline through the same stack. The stack is the Procfile's:

1. A throwaway PostgreSQL database (`nlredirbench_<hex>`: its own prefix, so no other bench's
   leftover cleanup drops it mid-run), migrated; a redis-server of our own on a free port.
2. A sent campaign tracked `anonymous` (the default) with 10 links, made with the services; one
   recipient's message built as the send engine builds it, for its real /c/ and /o/ URLs.
3. gunicorn (`wsgi:app`, the repo's gunicorn.conf.py, the Procfile's 2 workers x 4 threads,
   TRUSTED_PROXIES=1, its access log to a file) behind deploy/run-nginx.sh (the `proxy` process).
4. wrk, each target a 3 s warm-up then a measured run: /static/app.css, the click redirect and
   the pixel through nginx, then the click straight at gunicorn (the proxy's share). A Lua
   script sets a browser's User-Agent and Accept and spreads the clicks over the 10 tokens.
   After each run the Redis event list must have grown by wrk's count (every hit buffered).
5. py-spy on one gunicorn worker during a click run: a flame graph SVG and the collapsed stacks,
   summed per newsletter/ function and per request phase (hooks, token, classify, Redis).

Writes bench/results/<date>-<commit>-redirect.json (+ the SVG); every process, port and the
database are gone on the way out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform as pyplatform
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

import psutil
import psycopg
import redis

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import platform_db  # noqa: E402
from procs import Children, GroupStats, tree  # noqa: E402
from sink import free_port  # noqa: E402

GOAL_RPS, GOAL_P99_MS = 3000, 50
WEB_WORKERS, WEB_THREADS = 2, 4  # the Procfile's `web`: WEB_CONCURRENCY defaults to 2, --threads 4
LINKS = 10
HTML = "<html><body><h1>Hello {{ subscriber.name }}</h1>\n" + "".join(
    f'<p>Story {i}: <a href="https://shop.example.com/story/{i}?utm_source=news">read on</a></p>\n'
    for i in range(1, LINKS + 1)) + '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>'
BROWSER_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/131.0.0.0 Safari/537.36")
ACCEPT = {"static": "text/css,*/*;q=0.1",
          "click": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
          "pixel": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"}

# wrk: round-robin over the paths; done() prints one JSON line the bench parses (latency in us).
LUA = """
local paths = {%(paths)s}
local n = 0
wrk.headers["User-Agent"] = "%(ua)s"
wrk.headers["Accept"] = "%(accept)s"
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "connect": %%d, '
    .. '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d, "p50": %%d, "p90": %%d, "p99": %%d, '
    .. '"max": %%d, "mean": %%.1f}\\n', summary.requests, summary.duration, summary.bytes, e.connect,
    e.read, e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
"""

# Request phases for the profile: a sample counts for a phase when any frame of its stack matches.
PHASES = {
    "before_request: body_limits.apply_limit": r"web/body_limits\.py",
    "before_request: input_guard (NUL, id range)": r"web/input_guard\.py",
    "before_request: audit.remember_actor": r"remember_actor",
    "before_request: API key check (api.core)": r"web/api/core\.py",
    "flask-limiter (before_request check)": r"flask_limiter/",
    "flask-wtf CSRF (before_request)": r"flask_wtf/csrf\.py",
    "flask-login": r"flask_login/",
    "Flask session open/save": r"flask/sessions\.py",
    "after_request: security headers": r"web/headers\.py",
    "the tracking fast path (tracking.FastPath, before Flask)": r"web/public/tracking\.py",
    "Flask app context push/pop (in the fast path)": r"flask/ctx\.py",
    "token check (tokens.load)": r"engagement/tokens\.py",
    "classify": r"engagement/classify\.py",
    "link URL (links.url_of)": r"engagement/links\.py",
    "Redis hit script: burst count + RPUSH, one EVALSHA (events._push)": r"\b_push \(",
    "redis-py client (all Redis I/O)": r"site-packages/redis/",
    "werkzeug redirect()": r"werkzeug/utils\.py",
    "URL routing (werkzeug routing)": r"werkzeug/routing/",
    "the whole Flask app (ProxyFix wraps it)": r"middleware/proxy_fix\.py",
    "gunicorn access log (RedactingLogger)": r"gunicorn/glogging\.py|gunicorn\.conf\.py|newsletter/redaction\.py",
    "gunicorn HTTP parse + socket I/O": r"gunicorn/http/",
}


def log(message: str) -> None:
    print(f"[redirect-bench] {message}", flush=True)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=20, help="seconds of each measured wrk run")
    p.add_argument("--warmup", type=int, default=3, help="seconds of wrk before each measured run")
    # 64: nginx's `limit_conn per_client 64` (deploy/nginx.conf.template), all of wrk is one client.
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="wrk threads: one per core")
    p.add_argument("--profile-seconds", type=int, default=10)
    p.add_argument("--no-profile", action="store_true")
    p.add_argument("--tag", default="redirect")
    p.add_argument("--web-variants", default="",
                   help="comma-separated gunicorn worker classes (gthread, gevent) to measure the click through "
                        "nginx with, interleaved for --rounds rounds after the main runs, each on a fresh "
                        "gunicorn + nginx (gevent: pip install gevent; bench/requirements.txt)")
    p.add_argument("--rounds", type=int, default=2, help="rounds of --web-variants")
    return p.parse_args()


def start_redis(children: Children, workdir: Path) -> tuple[str, int]:
    port = free_port()
    proc = children.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(workdir)], workdir / "redis.log")
    client = redis.Redis(port=port)
    wait_until(lambda: client.ping(), "redis-server")
    return f"redis://127.0.0.1:{port}/0", proc.pid


def wait_until(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.1)


def make_campaign() -> tuple[int, list[str], str]:
    """The sent, anonymously tracked campaign; returns its id, the 10 click paths and the pixel path."""
    import email
    import email.policy

    from sqlalchemy import update

    from newsletter.extensions import db
    from newsletter.models import Campaign, CampaignStatus, Delivery, DeliveryStatus, Subscriber
    from newsletter.services.campaigns import campaigns, recipients, send
    from newsletter.services.campaigns.totals import record_totals

    list_id = platform_db.make_audience(1)
    campaign_id = campaigns.create(name="Redirect bench", subject="Ten stories", from_email="news@example.com",
                                   html=HTML, list_ids=[list_id], tracking="anonymous").id
    recipients.snapshot(campaign_id)
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id).values(status=DeliveryStatus.SENT))
    record_totals(campaign_id)
    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status=CampaignStatus.SENT))
    db.session.commit()
    # One recipient's message as a batch builds it (tests/engagement/test_engagement.py `message`).
    person = db.session.query(Subscriber).one()
    entry = send.prepared(db.session.get(Campaign, campaign_id))
    envelope = send.build_envelope(entry, 1, person.id, person.email, person.name, {})
    html = email.message_from_bytes(envelope.data, policy=email.policy.default) \
        .get_body(preferencelist=("html",)).get_content()
    clicks = re.findall(r'href="https?://[^/"]+(/c/[A-Za-z0-9_-]+)"', html)
    pixels = re.findall(r'src="https?://[^/"]+(/o/[A-Za-z0-9_-]+)"', html)
    if len(set(clicks)) != LINKS or len(pixels) != 1:
        raise RuntimeError(f"expected {LINKS} click URLs and a pixel, found {clicks} {pixels}")
    return campaign_id, clicks, pixels[0]


def wrk(workdir: Path, url: str, paths: list[str], accept: str, seconds: int, args: argparse.Namespace,
        name: str) -> dict:
    script = workdir / f"{name}.lua"
    script.write_text(LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "ua": BROWSER_UA, "accept": accept})
    done = subprocess.run(["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{seconds}s",
                           "--timeout", "5s", "--latency", "-s", str(script), url],
                          capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    stats = json.loads(line[len("WRKJSON "):])
    non_2xx_3xx = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return {"raw": stats, "text": done.stdout.replace(line, "").strip(),
            "non_2xx_3xx": int(non_2xx_3xx.group(1)) if non_2xx_3xx else 0}


def measure(target: str, url: str, paths: list[str], accept: str, ctx: dict, args: argparse.Namespace) -> dict:
    """Warm up, then the measured run with the CPU of each process group and the Redis list's growth."""
    log(f"{target}: warm-up {args.warmup} s")
    wrk(ctx["workdir"], url, paths, accept, args.warmup, args, f"{target}-warmup")
    time.sleep(1)
    events = ctx["redis"]
    before = events.llen(ctx["events_key"])
    db_before = platform_db.stat_database(ctx["db_name"])
    groups = [GroupStats(name, pids) for name, pids in ctx["groups"].items()]
    for group in groups:
        group.sample(started=False)
    busy_before, wrk_before = psutil.cpu_times(), _children_cpu()
    log(f"{target}: measured {args.duration} s")
    result = wrk(ctx["workdir"], url, paths, accept, args.duration, args, target)
    for group in groups:
        group.sample(started=True)
    busy_after, wrk_cpu = psutil.cpu_times(), _children_cpu() - wrk_before  # wrk is the only child that ended
    time.sleep(1)  # requests wrk sent as its clock ran out still land: count them too
    buffered = events.llen(ctx["events_key"]) - before
    db_after = platform_db.stat_database(ctx["db_name"])
    raw = result["raw"]
    seconds = raw["duration_us"] / 1e6
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    machine_busy = (sum(busy_after) - busy_after.idle - getattr(busy_after, "iowait", 0)) - \
        (sum(busy_before) - busy_before.idle - getattr(busy_before, "iowait", 0))
    row = {"target": target, "url": url + paths[0], "paths": len(paths), "requests": raw["requests"],
           "seconds": round(seconds, 2), "requests_per_s": round(raw["requests"] / seconds, 1),
           "latency_ms": {k: round(raw[k] / 1000, 2) for k in ("p50", "p90", "p99", "max", "mean")},
           "socket_errors": errors, "non_2xx_3xx": result["non_2xx_3xx"], "bytes": raw["bytes"],
           "redis_events_buffered": buffered if target != "static" else None,
           "cpu_s": {**{g.name: round(g.cpu_s, 2) for g in groups}, "wrk": round(wrk_cpu, 2)},
           "machine_busy_cpu_s": round(machine_busy, 2),
           # The hot path must not write a row per hit (issue 14): the database's counters say if it did.
           "database": {k: db_after[k] - db_before[k] for k in ("xact_commit", "tup_inserted", "tup_updated",
                                                                 "tup_fetched")},
           "wrk_output": result["text"]}
    if target != "static":
        row["buffered_minus_answered"] = buffered - (raw["requests"] - errors - result["non_2xx_3xx"])
    log(f"{target}: {row['requests_per_s']:,} req/s, p50/p90/p99 {row['latency_ms']['p50']}/"
        f"{row['latency_ms']['p90']}/{row['latency_ms']['p99']} ms, errors {errors}, non-2xx/3xx "
        f"{row['non_2xx_3xx']}, buffered {buffered}")
    return row


def profile(worker_pid: int, url: str, paths: list[str], ctx: dict, args: argparse.Namespace, stem: str) -> dict:
    """py-spy on one worker, each during its own click run: the SVG; the collapsed stacks of every
    running thread (wall time: waiting on Redis or for the GIL counts); those of the GIL holder
    only (`--gil`: where the worker's CPU goes)."""
    svg = BENCH / "results" / f"{stem}-flame.svg"
    runs = {"flamegraph": (svg, []), "wall": (ctx["workdir"] / "wall.txt", ["--nolineno", "--full-filenames"]),
            "gil": (ctx["workdir"] / "gil.txt", ["--nolineno", "--full-filenames", "--gil"])}
    out = {}
    for name, (path, extra) in runs.items():
        fmt = "flamegraph" if name == "flamegraph" else "raw"
        log(f"profile: py-spy record ({name}) on worker {worker_pid} for {args.profile_seconds} s")
        spy = subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(worker_pid), "--duration",
                                str(args.profile_seconds), "--format", fmt, "--output", str(path), *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        wrk(ctx["workdir"], url, paths, ACCEPT["click"], args.profile_seconds + 1, args, f"profile-{name}")
        spy.wait(timeout=60)
        if name != "flamegraph":
            out[name] = summarise_profile(path.read_text())
    return {"flame_graph": str(svg.relative_to(ROOT)), "py_spy_rate_hz": 100, **out}


def summarise_profile(collapsed: str) -> dict:
    """Own and inclusive samples per frame, newsletter/ functions apart, and per request phase."""
    own: Counter = Counter()
    inclusive: Counter = Counter()
    phases: Counter = Counter()
    total = request_total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
        if any("handle_request" in f for f in frames):
            request_total += n
        for phase, pattern in PHASES.items():
            if re.search(pattern, stack):
                phases[phase] += n

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    def short(frame: str) -> str:
        return re.sub(r"\(/.*/(?:site-packages|lib/python3\.\d+)/|\(" + re.escape(str(ROOT)) + "/", "(", frame)

    ours = [f for f in inclusive if f"{ROOT}/newsletter/" in f or "gunicorn.conf.py" in f]
    return {
        "samples": total, "samples_in_handle_request": request_total,
        "top_own": [{"frame": short(f), "samples": n, "percent": share(n)} for f, n in own.most_common(25)],
        "newsletter_inclusive": [{"frame": short(f), "samples": inclusive[f], "percent": share(inclusive[f]),
                                  "own_samples": own.get(f, 0)}
                                 for f in sorted(ours, key=lambda f: -inclusive[f])[:30]],
        "phases_percent_of_samples": {p: share(phases[p]) for p in PHASES},
    }


def cpu_per_request(app, clicks: list[str], pixel: str, rounds: int = 3000) -> dict:
    """CPU of one request in this process, no server and no socket: the app's own cost, which the
    machine's other load barely moves (thread CPU time; waiting on Redis is not counted). Each
    target twice: through the app as gunicorn calls it (ProxyFix, then the tracking fast path) and
    straight into Flask's request machinery (what the fast path skips; the view is the same)."""
    from werkzeug.test import EnvironBuilder

    fast = app.wsgi_app  # ProxyFix(FastPath(Flask.wsgi_app))
    flask_only = fast.app.wsgi_app

    def environ(path: str, accept: str) -> dict:
        return EnvironBuilder(path=path, headers={"User-Agent": BROWSER_UA, "Accept": accept,
                                                  "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "http"},
                              environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()

    def start_response(status, headers, exc_info=None):
        start_response.status = status

    out = {}
    targets = {"click": [environ(c, ACCEPT["click"]) for c in clicks], "pixel": [environ(pixel, ACCEPT["pixel"])]}
    for name, environs in targets.items():
        for route, wsgi in (("fast_path", fast), ("through_flask", flask_only)):
            for i in range(50):  # warm: the link cache, the script's SHA, the user-agent verdicts
                b"".join(wsgi(dict(environs[i % len(environs)]), start_response))
            started = time.thread_time()
            for i in range(rounds):
                b"".join(wsgi(dict(environs[i % len(environs)]), start_response))
            out[f"{name}_{route}_us"] = round((time.thread_time() - started) / rounds * 1e6, 1)
            out[f"{name}_{route}_status"] = start_response.status
    log("CPU per request in-process (us): " + ", ".join(f"{k} {v}" for k, v in out.items() if k.endswith("_us")))
    return out


# gunicorn's worker options per class: the Procfile's gthread (2 x 4 threads), or gevent's
# event loop (2 processes, 100 connections each; no thread pool handing each request over).
WEB_CLASSES = {"gthread": ["--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS)],
               "gevent": ["--workers", str(WEB_WORKERS), "-k", "gevent", "--worker-connections", "100"]}


def web_variants(children: Children, env: dict, workdir: Path, clicks: list[str], ctx: dict,
                 args: argparse.Namespace) -> dict:
    """The click through nginx with each worker class in turn, `args.rounds` times, interleaved;
    each run on its own gunicorn and nginx (the access log on, as in the Procfile)."""
    names = [n.strip() for n in args.web_variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in WEB_CLASSES]
    if unknown:
        raise SystemExit(f"unknown --web-variants {unknown}: choose from {sorted(WEB_CLASSES)}")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    for round_no in range(args.rounds):
        for name in names:
            web_port, proxy_port = free_port(), free_port()
            web = children.start([str(ROOT / ".venv/bin/gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{web_port}",
                                  *WEB_CLASSES[name], "--access-logfile", str(workdir / f"access-{name}.log")],
                                 workdir / f"gunicorn-{name}.log", env=env, cwd=ROOT)
            proxy = children.start(["sh", str(ROOT / "deploy/run-nginx.sh")], workdir / f"nginx-{name}.log",
                                   env={**env, "NGINX_PORT": str(proxy_port), "WEB_UPSTREAM": f"127.0.0.1:{web_port}",
                                        "NGINX_RUN_DIR": str(workdir / f"nginx-{name}-{round_no}")}, cwd=ROOT)
            try:
                for port in (web_port, proxy_port):
                    wait_until(lambda port=port: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                                                        timeout=2).status == 200, f"port {port}")
                run_ctx = {**ctx, "groups": {"gunicorn": lambda w=web.pid: pids_of(w),
                                             "nginx": lambda p=proxy.pid: pids_of(p),
                                             "redis_server": ctx["groups"]["redis_server"]}}
                row = measure(f"click_{name}_r{round_no + 1}", f"http://127.0.0.1:{proxy_port}", clicks,
                              ACCEPT["click"], run_ctx, args)
            finally:
                Children.stop(proxy)
                Children.stop(web)
            row["gunicorn_cpu_us_per_request"] = round(row["cpu_s"]["gunicorn"] / max(1, row["requests"]) * 1e6, 1)
            runs[name].append(row)
    summary = {}
    for name, rows in runs.items():
        rates = [r["requests_per_s"] for r in rows]
        p99s = [r["latency_ms"]["p99"] for r in rows]
        summary[name] = {"requests_per_s_median": round(statistics.median(rates), 1),
                         "p99_ms_median": round(statistics.median(p99s), 2),
                         "gunicorn_cpu_us_per_request": [r["gunicorn_cpu_us_per_request"] for r in rows],
                         "requests_per_s": [r["requests_per_s"] for r in rows],
                         "p99_ms": [r["latency_ms"]["p99"] for r in rows],
                         "lost": [r["buffered_minus_answered"] for r in rows]}
        log(f"{name}: median {summary[name]['requests_per_s_median']:,} req/s, p99 {summary[name]['p99_ms_median']} ms")
    return {"rounds": args.rounds, "summary": summary, "runs": runs}


def pids_of(pid: int) -> list[int]:
    return [p.pid for p in tree(pid)]


def run(args: argparse.Namespace) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    stem = f"{date.today().isoformat()}-{commit}-{args.tag}"
    workdir = Path(tempfile.mkdtemp(prefix="nlredirbench-"))
    name = f"nlredirbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(platform_db.ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        postgres_version = conn.execute("SHOW server_version").fetchone()[0]
    db_url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    children = Children()
    try:
        redis_url, redis_pid = start_redis(children, workdir)
        web_port, proxy_port = free_port(), free_port()
        base_url = f"http://127.0.0.1:{proxy_port}"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "REDIS_"))},
               "PYTHONPATH": str(ROOT), "DATABASE_URL": db_url, "REDIS_URL": redis_url,
               "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "INSTANCE_PATH": str(workdir / "instance"), "MAIL_SERVER": "127.0.0.1", "BASE_URL": base_url,
               "TRUSTED_PROXIES": "1"}
        platform_db.migrate(env)
        os.environ.update(env)
        from newsletter import create_app

        app = create_app()
        with app.app_context():
            campaign_id, clicks, pixel = make_campaign()
            from newsletter.services.engagement import events as engagement_events

            events_key = engagement_events.key("events")
        log(f"database {name}, campaign {campaign_id}: {len(clicks)} click URLs, pixel {pixel}")

        web = children.start([str(ROOT / ".venv/bin/gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{web_port}",
                              "--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS),
                              "--access-logfile", str(workdir / "access.log")],
                             workdir / "gunicorn.log", env=env, cwd=ROOT)
        proxy = children.start(["sh", str(ROOT / "deploy/run-nginx.sh")], workdir / "nginx.log",
                               env={**env, "NGINX_PORT": str(proxy_port), "WEB_UPSTREAM": f"127.0.0.1:{web_port}",
                                    "NGINX_RUN_DIR": str(workdir / "nginx")}, cwd=ROOT)
        for port in (web_port, proxy_port):
            wait_until(lambda port=port: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                       .status == 200, f"port {port}")
        static = urllib.request.urlopen(f"{base_url}/static/app.css", timeout=5)
        # nginx's template proxies every location to gunicorn: Flask's static view answers.
        static_server = {"bytes": len(static.read()), "cache_control": static.headers.get("Cache-Control"),
                         "served_by": "gunicorn (Flask static view via nginx proxy_pass)"
                         if _in_access_log(workdir / "access.log", "/static/app.css") else "nginx"}
        workers = [p.pid for p in psutil.Process(web.pid).children()]
        client = redis.Redis.from_url(redis_url)
        ctx = {"workdir": workdir, "redis": client, "events_key": events_key, "db_name": name,
               "groups": {"gunicorn": lambda: pids_of(web.pid), "nginx": lambda: pids_of(proxy.pid),
                          "redis_server": lambda: [redis_pid],
                          # Per worker: nginx keeps 16 upstream connections, and which worker accepted
                          # each decides how evenly the two share the load.
                          **{f"gunicorn_worker_{i}": (lambda pid=pid: [pid]) for i, pid in enumerate(workers)}}}
        rows = [measure("static", base_url, ["/static/app.css"], ACCEPT["static"], ctx, args),
                measure("click", base_url, clicks, ACCEPT["click"], ctx, args),
                measure("pixel", base_url, [pixel], ACCEPT["pixel"], ctx, args),
                measure("click_direct_gunicorn", f"http://127.0.0.1:{web_port}", clicks, ACCEPT["click"], ctx, args)]
        sample = [json.loads(x) for x in client.lrange(events_key, -200, -1)]
        reasons = Counter(f"{e[0]}:{'machine' if e[4] else 'human'}:{e[5]}" for e in sample)
        profiled = None if args.no_profile else profile(workers[0], base_url, clicks, ctx, args, stem)
        compared = web_variants(children, env, workdir, clicks, ctx, args) if args.web_variants else None
        in_process = cpu_per_request(app, clicks, pixel)
        click = rows[1]
        result = {
            "bench": "redirect", "date": date.today().isoformat(), "commit": commit, "args": vars(args),
            "machine": {"cpus": os.cpu_count(), "cpu": _cpu_model(), "python": pyplatform.python_version(),
                        "postgres": postgres_version, "redis": client.info("server")["redis_version"],
                        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
                        "wrk": subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]},
            "stack": {"gunicorn_workers": WEB_WORKERS, "gunicorn_threads": WEB_THREADS, "worker_pids": workers,
                      "tracking": "anonymous", "links": LINKS, "user_agent": BROWSER_UA, "static": static_server},
            "goal": {"requests_per_s": GOAL_RPS, "p99_ms": GOAL_P99_MS,
                     "met": click["requests_per_s"] >= GOAL_RPS and click["latency_ms"]["p99"] < GOAL_P99_MS},
            "runs": rows, "last_200_events_by_kind_verdict_reason": dict(reasons), "profile": profiled,
            "cpu_per_request_in_process": in_process, "web_variants": compared,
        }
        out = BENCH / "results" / f"{stem}.json"
        out.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {out.relative_to(ROOT)}; goal met: {result['goal']['met']}")
        return result
    finally:
        children.stop_all()
        platform_db.drop_database(name)
        shutil.rmtree(workdir, ignore_errors=True)


def _in_access_log(path: Path, needle: str) -> bool:
    time.sleep(0.2)
    return path.exists() and needle in path.read_text()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return pyplatform.processor()


if __name__ == "__main__":
    run(parse_args())
