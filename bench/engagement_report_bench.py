"""Engagement report bench: the report's reads on a campaign of 1,000,000 deliveries and 5,000,000 events.

    .venv/bin/python bench/engagement_report_bench.py              # ~2 minutes
    .venv/bin/python bench/engagement_report_bench.py --history 10 # fewer past campaigns: quicker

The report reads only the counters the flush writes, so this bench writes those counters
directly (as a flush of 5M events would have left them) and times the reads:

1. A throwaway PostgreSQL database (`nlreportbench_<hex>`, its own prefix: no other bench's
   cleanup drops it), migrated to head.
2. The measured campaign (individual tracking): 1,000,000 deliveries (sent), 30 links, events
   over 14 days of hours: 3,500,000 opens and 1,500,000 clicks split human/machine, unique
   counters, machine reasons and 5,000 mail domains. Plus `--history` earlier campaigns with the
   same counters, so the counter tables hold other campaigns' rows too (the dashboard compares
   the last 8). ANALYZE.
3. Each read, `--runs` times (median, min, max in ms): the services (`stats.campaign_stats`,
   `report.campaign_engagement`, `report.link_stats`, `report.timeline_buckets`,
   `report.recent_rates`), the API endpoints and the report page through the Flask app
   (test client: the whole request, template included, without a network hop), with the
   EXPLAIN (ANALYZE) of the main counter query.

Writes bench/results/engagement_report-<date>.json. The database is dropped on the way out.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import platform_db  # noqa: E402

GOAL_MS = 200
DELIVERIES = 1_000_000
OPENS, CLICKS = 3_500_000, 1_500_000  # 5,000,000 events
LINKS, HOURS, DOMAINS = 30, 14 * 24, 5_000
MACHINE_SHARE = 0.3  # of each kind's events
START = datetime(2026, 11, 1, 8, tzinfo=UTC)


def log(message: str) -> None:
    print(f"[engagement-report] {message}", flush=True)




def seed_campaign(conn: psycopg.Connection, name: str, deliveries: bool) -> int:
    """One sent, individually tracked campaign and its counters; its deliveries when asked."""
    values = {"name": "%s", "subject": "'Hello'", "from_email": "'news@example.com'", "status": "'sent'",
              "tracking": "'individual'", "recipients": str(DELIVERIES), "sent": str(DELIVERIES),
              "started_at": "%s", "finished_at": "%s"}
    columns = platform_db.fill_row_sql(conn, "campaigns", values)
    campaign_id = conn.execute(f"INSERT INTO campaigns {columns} RETURNING id",
                               (name, START, START)).fetchone()[0]
    conn.execute("INSERT INTO campaign_links (campaign_id, url) SELECT %s, 'https://example.com/story-' || g"
                 " FROM generate_series(1, %s) g", (campaign_id, LINKS))
    links = [r[0] for r in conn.execute("SELECT id FROM campaign_links WHERE campaign_id = %s ORDER BY id",
                                        (campaign_id,))]
    # Events decay over the hours (most in the first day): weight 1 / (1 + hour / 6).
    weights = [1 / (1 + h / 6) for h in range(HOURS)]
    total_weight = sum(weights)
    rows = []
    for kind, events, link_ids in (("open", OPENS, [0]), ("click", CLICKS, links)):
        per_link = events / len(link_ids)
        for rank, link_id in enumerate(link_ids):
            share = per_link if kind == "open" else events * (0.5 ** (rank + 1) + 0.5 ** len(link_ids) / len(link_ids))
            for hour, weight in enumerate(weights):
                n = share * weight / total_weight
                for machine, part in ((False, 1 - MACHINE_SHARE), (True, MACHINE_SHARE)):
                    if round(n * part):
                        rows.append((campaign_id, kind, link_id, machine, START + timedelta(hours=hour),
                                     round(n * part)))
    with conn.cursor() as cursor:
        copy_sql = "COPY engagement_counts (campaign_id, kind, link_id, machine, hour, count) FROM STDIN"
        with cursor.copy(copy_sql) as copy:
            for row in rows:
                copy.write_row(row)
    conn.execute("INSERT INTO engagement_unique_counts (campaign_id, kind, link_id, count) VALUES"
                 " (%s, 'open', 0, 1400000), (%s, 'click', 0, 420000)", (campaign_id, campaign_id))
    conn.execute("INSERT INTO engagement_unique_counts (campaign_id, kind, link_id, count)"
                 " SELECT %s, 'click', id, 10000 + id %% 997 FROM campaign_links WHERE campaign_id = %s",
                 (campaign_id, campaign_id))
    for kind, reasons in (("open", {"apple_mpp": 900000, "prefetch": 60000, "too_soon": 90000}),
                          ("click", {"scanner": 300000, "bot": 40000, "too_soon": 50000, "burst": 60000})):
        for reason, n in reasons.items():
            conn.execute("INSERT INTO engagement_reason_counts (campaign_id, kind, reason, count) "
                         "VALUES (%s, %s, %s, %s)",
                         (campaign_id, kind, reason, n))
    conn.execute("INSERT INTO engagement_domain_counts (campaign_id, kind, domain, machine, count)"
                 " SELECT %s, k, 'domain' || g || '.example', m, 1 + (100000 / g)"
                 " FROM generate_series(1, %s) g, (VALUES ('open'), ('click')) kinds(k),"
                 " (VALUES (true), (false)) ms(m)",
                 (campaign_id, DOMAINS))
    if deliveries:
        conn.execute(
            "INSERT INTO deliveries (campaign_id, email, status, attempts, created_at, updated_at, sent_at, smtp_code,"
            " smtp_message, worker)"
            " SELECT %s, 'r' || g || '@domain' || (g %% 5000 + 1) || '.example', 'sent', 1, %s, %s, %s, 250, '', ''"
            " FROM generate_series(1, %s) g", (campaign_id, START, START, START, DELIVERIES))
    return campaign_id


def timed(call, runs: int) -> dict:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return {"ms_median": round(statistics.median(times), 2), "ms_min": round(min(times), 2),
            "ms_max": round(max(times), 2), "runs": runs}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--history", type=int, default=40, help="earlier campaigns with counters of the same size")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    url, name = platform_db.create_database("nlreportbench_")
    log(f"database {name}")
    started = time.perf_counter()
    redis_server = None
    try:
        env = {"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "INSTANCE_PATH": tempfile.mkdtemp(prefix="nlreportbench-"), "BASE_URL": "https://127.0.0.1"}
        os.environ.update(env)
        # The app's own embedded Redis (its socket in the instance directory, as with no REDIS_URL):
        # sign-in's guard and the rate limiter need one; the report itself never touches it.
        from newsletter.devserver.embedded_redis import EmbeddedRedis
        redis_server = EmbeddedRedis(env["INSTANCE_PATH"]).start()
        platform_db.migrate({**os.environ})
        seed_timings = {}
        with psycopg.connect(url, autocommit=True) as conn:
            t = time.perf_counter()
            for i in range(args.history):
                seed_campaign(conn, f"Earlier campaign {i + 1}", deliveries=False)
            seed_timings["history_s"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            campaign_id = seed_campaign(conn, "Bench campaign", deliveries=True)
            seed_timings["campaign_s"] = round(time.perf_counter() - t, 1)
            conn.execute("ANALYZE")
            sizes = {table: conn.execute(f"SELECT count(*), coalesce(sum(count), 0) FROM {table}").fetchone()
                     for table in ("engagement_counts", "engagement_unique_counts", "engagement_reason_counts",
                                   "engagement_domain_counts")}
            sizes["deliveries"] = conn.execute("SELECT count(*) FROM deliveries").fetchone()
            events = conn.execute("SELECT sum(count) FROM engagement_counts WHERE campaign_id = %s",
                                  (campaign_id,)).fetchone()[0]
            postgres = conn.execute("SHOW server_version").fetchone()[0]
        log(f"seeded in {seed_timings}; campaign {campaign_id}: {events:,} events in its counters; {sizes}")

        from newsletter import create_app

        app = create_app()
        app.config["WTF_CSRF_ENABLED"] = False  # the bench signs in with a plain POST
        measured: dict[str, dict] = {}
        with app.app_context():
            from sqlalchemy import select

            from newsletter.extensions import db
            from newsletter.models import EngagementCount, Role
            from newsletter.services.accounts import api_keys, users
            from newsletter.services.engagement import report, stats

            users.create_user("bench@example.com", "long enough password", Role.ADMIN)
            key = api_keys.create_api_key("bench", Role.VIEWER)[1]
            services = {
                "service stats.campaign_stats (pinned API)": lambda: stats.campaign_stats(campaign_id),
                "service report.campaign_engagement (the page's data)": lambda: report.campaign_engagement(campaign_id),
                "service report.link_stats": lambda: report.link_stats(campaign_id),
                "service report.timeline_buckets": lambda: report.timeline_buckets(campaign_id),
                "service report.recent_rates (dashboard, last 8)": lambda: report.recent_rates(limit=8),
            }
            for label, call in services.items():
                call()  # warm: the first call pays for imports and the pool's first connection
                db.session.rollback()

                def run(call=call):
                    call()
                    db.session.rollback()  # a fresh transaction each run, like a request

                measured[label] = timed(run, args.runs)
                log(f"{label:55s} median {measured[label]['ms_median']:8.2f} ms")
            main_query = (select(EngagementCount.kind, EngagementCount.link_id, EngagementCount.machine,
                                 db.func.sum(EngagementCount.count))
                          .where(EngagementCount.campaign_id == campaign_id)
                          .group_by(EngagementCount.kind, EngagementCount.link_id, EngagementCount.machine))
            compiled = main_query.compile(dialect=db.engine.dialect)
            plan = "\n".join(db.session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), compiled.params).scalars().all())
            db.session.rollback()

        client = app.test_client()
        base = "https://127.0.0.1"  # production cookies are Secure
        response = client.post("/login", data={"email": "bench@example.com", "password": "long enough password"},
                               base_url=base)
        assert response.status_code == 302, response.status_code
        headers = {"Authorization": f"Bearer {key}"}
        requests = {
            "GET /api/v1/campaigns/{id}/stats": (f"/api/v1/campaigns/{campaign_id}/stats", headers),
            "GET /api/v1/campaigns/{id}/stats/links": (f"/api/v1/campaigns/{campaign_id}/stats/links", headers),
            "GET /api/v1/campaigns/{id}/stats/timeline": (f"/api/v1/campaigns/{campaign_id}/stats/timeline", headers),
            "GET /admin/campaigns/{id}/engagement (report page)": (f"/admin/campaigns/{campaign_id}/engagement", {}),
        }
        for label, (path, extra) in requests.items():
            first = client.get(path, headers=extra, base_url=base)
            assert first.status_code == 200, (label, first.status_code, first.get_data(as_text=True)[:300])
            measured[label] = {**timed(lambda path=path, extra=extra: client.get(path, headers=extra, base_url=base),
                                             args.runs),
                               "bytes": len(first.get_data())}
            log(f"{label:55s} median {measured[label]['ms_median']:8.2f} ms")
        # For context, not the goal: the whole dashboard, and the parts of it that read the
        # deliveries (its send charts and campaign progress bars, older than this report).
        context = {"GET /admin/ (whole dashboard)": timed(lambda: client.get("/admin/", base_url=base), args.runs)}
        with app.app_context():
            from newsletter.extensions import db
            from newsletter.services.campaigns import reports

            for label, call in {"reports.recent_campaigns(6) (counts deliveries)": lambda: reports.recent_campaigns(6),
                                "reports.delivery_activity hour+day": lambda: (reports.delivery_activity("hour", 24),
                                                                               reports.delivery_activity("day", 30)),
                                "reports.subscriber_growth(90)": lambda: reports.subscriber_growth(90)}.items():
                def run(call=call):
                    call()
                    db.session.rollback()
                context[label] = timed(run, args.runs)
        for label, figures in context.items():
            log(f"{label + ' (context)':55s} median {figures['ms_median']:8.2f} ms")
        with app.app_context():
            from newsletter.extensions import db
            db.session.remove()
            db.engine.dispose()

        slowest = max(m["ms_median"] for m in measured.values())
        result = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(),
                  "commit": os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
                  "cores": os.cpu_count(), "postgres": postgres, "goal_ms": GOAL_MS,
                  "campaign": {"deliveries": DELIVERIES, "events": int(events), "opens": OPENS, "clicks": CLICKS,
                               "links": LINKS, "hours": HOURS, "domains": DOMAINS},
                  "history_campaigns": args.history,
                  "table_rows": {table: {"rows": int(n), "sum_count": int(s) if table != "deliveries" else None}
                                 for table, (n, *rest) in sizes.items() for s in (rest[0] if rest else 0,)},
                  "seed": seed_timings, "measured": measured, "context": context, "slowest_median_ms": slowest,
                  "within_goal": slowest < GOAL_MS, "explain_counts_query": plan,
                  "total_s": round(time.perf_counter() - started, 1)}
        out = BENCH / "results" / f"engagement_report-{result['date']}.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        log(f"slowest median {slowest} ms (goal < {GOAL_MS} ms); wrote {out}")
    finally:
        if redis_server is not None:
            redis_server.stop()
        platform_db.drop_database(name)
        log(f"dropped {name}")


if __name__ == "__main__":
    main()
