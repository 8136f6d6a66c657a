"""Send-log bench: the send log's queries on 10,000,000 deliveries, and what its indexes cost the pipeline.

    .venv/bin/python bench/send_log_bench.py                 # 10M deliveries, 500k subscribers, 300 campaigns
    .venv/bin/python bench/send_log_bench.py --rows 1000000  # a quicker look

1. A throwaway PostgreSQL database (`nlsendlog_<hex>`), migrated to head.
2. Seeds subscribers and campaigns, then the deliveries with generate_series (indexes dropped
   and rebuilt around the load; FK triggers off), with a realistic mix: ~95% sent (250),
   failures (550/554 permanent, 451/452 transient, a few without a code), cancelled tails,
   and one campaign still sending. ANALYZE.
3. The write cost of the send-log indexes: a snapshot INSERT of one big campaign and three
   pipeline moves over its rows (UPDATEs of status/updated_at, like publish/claim/record),
   first without the four send-log indexes, then with them (their CREATE INDEX is timed).
4. Every filter combination through the page's own service query (`send_log.page`): the
   first page and a deep page (the keyset cursor of row ~20,000), several runs each, and the
   EXPLAIN (ANALYZE, BUFFERS) of each.

Writes bench/results/send_log-<date>.json and the "Send log at 10M rows" block of
bench/README.md. The database is dropped on the way out, failures and Ctrl-C included.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import platform_db  # noqa: E402

SEND_LOG_INDEXES = ("ix_deliveries_updated_at_id", "ix_deliveries_campaign_updated_at_id",
                    "ix_deliveries_unsent_status_updated_at_id", "ix_deliveries_code_updated_at_id")
BEGIN, END = "<!-- send-log-bench:begin -->", "<!-- send-log-bench:end -->"


def log(message: str) -> None:
    print(f"[send-log] {message}", flush=True)




def seed(conn: psycopg.Connection, rows: int, subscribers: int, campaigns: int) -> dict:
    timings = {}
    per_campaign = -(-rows // campaigns)
    t = time.perf_counter()
    conn.execute("INSERT INTO subscribers " + platform_db.fill_row_sql(conn, "subscribers", {
        "email": "'user' || lpad(g::text, 7, '0') || '@' "
                 "|| (ARRAY['example.org','mail.test','post.example'])[1 + g % 3]",
        "name": "(ARRAY['Anna','Bruno','Chloé','Dmitri','Eva','Farid'])[1 + g % 6] || ' ' || g",
        "status": "'confirmed'", "attributes": "'{}'", "created_at": "now()", "updated_at": "now()"})
        + f" FROM generate_series(1, {subscribers}) g")
    conn.execute("INSERT INTO campaigns " + platform_db.fill_row_sql(conn, "campaigns", {
        "name": "'Campaign ' || g", "subject": "'News'", "from_email": "'news@example.com'",
        "status": f"CASE WHEN g = {campaigns} THEN 'sending' WHEN g % 25 = 0 THEN 'cancelled' ELSE 'sent' END",
        "snapshot_at": "now()", "created_at": "now()", "updated_at": "now()"})
        + f" FROM generate_series(1, {campaigns}) g")
    timings["subscribers_and_campaigns_s"] = time.perf_counter() - t

    indexes = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deliveries' "
                           "AND indexname NOT LIKE 'pk_%'").fetchall()
    for name, _ in indexes:
        if name.startswith("uq_"):
            conn.execute(f"ALTER TABLE deliveries DROP CONSTRAINT {name}")
        else:
            conn.execute(f"DROP INDEX {name}")
    conn.execute("SET session_replication_role = replica")  # no FK trigger per row while loading
    t = time.perf_counter()
    # Row g: campaign c = 1 + (g-1) / per_campaign, k = its position in the campaign; r a
    # pseudo-random 0..9999 per row. Campaign c starts on day c (2025-01-01 + c days) and sends
    # 50 messages a second; every 25th campaign was cancelled after 60%; the last is still sending.
    conn.execute(f"""
        INSERT INTO deliveries (campaign_id, subscriber_id, email, status, attempts, claim, next_attempt_at,
                                created_at, updated_at, sent_at, smtp_code, smtp_message, worker)
        SELECT c, s, sub.email, st, CASE WHEN st = 'pending' OR st = 'cancelled' THEN 0
                                         WHEN code BETWEEN 400 AND 499 OR (st = 'failed' AND code IS NULL) THEN 4
                                         ELSE 1 END,
               NULL, NULL, t0, t, CASE WHEN st = 'sent' THEN t END, code,
               CASE code WHEN 250 THEN '2.0.0 Ok: queued as ' || md5(g::text) WHEN 550 THEN '5.1.1 No such user'
                         WHEN 554 THEN '5.7.1 Rejected' WHEN 451 THEN '4.3.0 Try again later'
                         WHEN 452 THEN '4.2.2 Mailbox full' ELSE
                         CASE WHEN st = 'failed' THEN 'SMTPServerDisconnected: Connection unexpectedly closed'
                              ELSE '' END END,
               CASE WHEN st IN ('sent', 'failed') THEN 'worker' || (g % 4) || '@bench pid ' || (1000 + g % 8)
                    ELSE '' END
        FROM (
            SELECT g, c, k, r, t0, t, s,
                   CASE WHEN c = {campaigns} AND k > {per_campaign // 3} THEN 'pending'
                        WHEN c % 25 = 0 AND k > {per_campaign * 6 // 10} THEN 'cancelled'
                        WHEN r < 150 THEN 'failed' ELSE 'sent' END AS st,
                   CASE WHEN c = {campaigns} AND k > {per_campaign // 3} THEN NULL
                        WHEN c % 25 = 0 AND k > {per_campaign * 6 // 10} THEN NULL
                        WHEN r < 70 THEN 550 WHEN r < 90 THEN 554 WHEN r < 115 THEN 451 WHEN r < 130 THEN 452
                        WHEN r < 150 THEN NULL ELSE 250 END AS code
            FROM (
                SELECT g, c, k, (hashint4(g) & 2147483647) % 10000 AS r,
                       timestamptz '2025-01-01 08:00+00' + make_interval(days => c) AS t0,
                       timestamptz '2025-01-01 08:00+00' + make_interval(days => c, secs => k / 50.0) AS t,
                       1 + (c * 7777 + k) % {subscribers} AS s
                FROM (SELECT g, 1 + (g - 1) / {per_campaign} AS c, (g - 1) % {per_campaign} AS k
                      FROM generate_series(1, {rows}) g) base
            ) x
        ) y JOIN subscribers sub ON sub.id = y.s""")
    timings["deliveries_insert_s"] = time.perf_counter() - t
    conn.execute("SET session_replication_role = DEFAULT")
    conn.execute("SET maintenance_work_mem = '512MB'")
    t = time.perf_counter()
    for name, definition in indexes:
        if name in SEND_LOG_INDEXES:
            continue  # built in write_cost, after measuring the pipeline without them
        if name.startswith("uq_"):
            conn.execute(f"ALTER TABLE deliveries ADD CONSTRAINT {name} UNIQUE (campaign_id, subscriber_id)")
        else:
            conn.execute(definition)
    timings["existing_indexes_s"] = time.perf_counter() - t
    t = time.perf_counter()
    conn.execute("VACUUM ANALYZE deliveries")
    conn.execute("ANALYZE subscribers")
    conn.execute("ANALYZE campaigns")
    timings["vacuum_analyze_s"] = time.perf_counter() - t
    return {"timings": timings, "indexes": dict(indexes), "per_campaign": per_campaign}


def pipeline_pass(conn: psycopg.Connection, campaign_id: int, subscribers: int) -> dict:
    """A snapshot INSERT of `subscribers` rows, then three moves over them (queued, sending, sent)."""
    out = {}
    t = time.perf_counter()
    conn.execute(f"""INSERT INTO deliveries (campaign_id, subscriber_id, email, status, attempts, created_at,
                     updated_at, smtp_message, worker)
                     SELECT {campaign_id}, id, email, 'pending', 0, now(), now(), '', '' FROM subscribers
                     ORDER BY id LIMIT {subscribers}""")
    out["snapshot_insert_s"] = time.perf_counter() - t
    for move, extra in (("queued", ""), ("sending", ", attempts = attempts + 1, claim = 'bench'"),
                        ("sent", ", sent_at = now(), smtp_code = 250, smtp_message = '2.0.0 Ok', claim = NULL")):
        t = time.perf_counter()
        # In 5,000-row slices by id, as the pipeline's windows and batches touch them.
        lo, hi = conn.execute(f"SELECT min(id), max(id) FROM deliveries WHERE campaign_id = {campaign_id}").fetchone()
        for start in range(lo, hi + 1, 5000):
            conn.execute(f"UPDATE deliveries SET status = '{move}', updated_at = clock_timestamp(){extra} "
                         f"WHERE campaign_id = {campaign_id} AND id >= {start} AND id < {start + 5000}")
        out[f"move_to_{move}_s"] = time.perf_counter() - t
    conn.execute(f"DELETE FROM deliveries WHERE campaign_id = {campaign_id}")
    conn.execute("VACUUM deliveries")
    out["rows"] = subscribers
    return out


def write_cost(conn: psycopg.Connection, subscribers: int, definitions: dict[str, str]) -> dict:
    conn.execute("INSERT INTO campaigns " + platform_db.fill_row_sql(conn, "campaigns", {
        "name": "'Write-cost probe'", "subject": "'x'", "from_email": "'x@example.com'", "status": "'sending'",
        "created_at": "now()", "updated_at": "now()"}))
    probe = conn.execute("SELECT max(id) FROM campaigns").fetchone()[0]
    pipeline_pass(conn, probe, subscribers)  # a warm-up pass (caches, WAL files), not counted
    without = pipeline_pass(conn, probe, subscribers)
    log(f"write cost without the send-log indexes: {without}")
    built = {}
    for name in SEND_LOG_INDEXES:
        t = time.perf_counter()
        conn.execute(definitions[name])
        built[name] = time.perf_counter() - t
    conn.execute("ANALYZE deliveries")
    with_ = pipeline_pass(conn, probe, subscribers)
    log(f"write cost with them: {with_}")
    sizes = dict(conn.execute("SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes "
                              "WHERE relname = 'deliveries'").fetchall())
    conn.execute(f"DELETE FROM campaigns WHERE id = {probe}")
    conn.execute("ANALYZE deliveries")
    return {"without": without, "with": with_, "create_index_s": built, "index_bytes": sizes}


def cases(campaigns: int, per_campaign: int) -> list[tuple[str, dict]]:
    big = campaigns // 2
    return [
        ("everything", {}),
        ("campaign", {"campaign_id": big}),
        ("status=failed", {"status": "failed"}),
        ("campaign + status=failed", {"campaign_id": big, "status": "failed"}),
        ("status=cancelled", {"status": "cancelled"}),
        ("status=pending (in flight)", {"status": "pending"}),
        ("status=sent", {"status": "sent"}),
        ("code=550", {"code": "550"}),
        ("code=4xx", {"code": "4xx"}),
        ("recipient, rare (one person)", {"q": "user0012345@"}),
        ("recipient, common (a domain)", {"q": "mail.test"}),
        ("recipient, name (1 in 6)", {"q": "Chloé"}),
        ("dates (one week)", {"since": "2025-04-01", "until": "2025-04-07"}),
        ("campaign + dates", {"campaign_id": big, "since": "2025-01-01", "until": "2026-12-31"}),
        ("status=failed + dates", {"status": "failed", "since": "2025-04-01", "until": "2025-04-30"}),
        ("recipient + status=failed", {"q": "mail.test", "status": "failed"}),
        ("recipient (rare) + campaign", {"q": "user0012345@", "campaign_id": big}),
        ("campaign + failed + 5xx + recipient + dates", {"campaign_id": big, "status": "failed", "code": "5xx",
                                                          "q": "example.org", "since": "2025-01-01",
                                                          "until": "2026-12-31"}),
    ]


def measure(app, name: str, filters_kw: dict, runs: int, deep_at: int) -> dict:
    from sqlalchemy import select

    from newsletter.extensions import db
    from newsletter.services.delivery import send_log

    filters = send_log.make_filters(**filters_kw)
    # The deep page's cursor: the row `deep_at` rows in (found once, outside the timing).
    ordered = (select(*send_log._COLUMNS).where(*send_log.conditions(filters))
               .order_by(send_log.Delivery.updated_at.desc(), send_log.Delivery.id.desc()).offset(deep_at).limit(1))
    anchor = db.session.execute(ordered).first()
    db.session.rollback()
    result = {"filters": filters_kw}
    for label, cursor in (("first", None), ("deep", send_log.cursor_of(anchor) if anchor else None)):
        if label == "deep" and cursor is None:
            result[label] = None
            continue
        times, found = [], 0
        for _ in range(runs):
            t = time.perf_counter()
            page = send_log.page(filters, cursor)
            times.append((time.perf_counter() - t) * 1000)
            found = len(page.rows)
            db.session.rollback()
        compiled = send_log._query(filters, cursor, send_log.PAGE + 1).compile(dialect=db.engine.dialect)
        plan = db.session.connection().exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), compiled.params).scalars().all()
        db.session.rollback()
        result[label] = {"ms_median": round(statistics.median(times), 2), "ms_min": round(min(times), 2),
                         "ms_max": round(max(times), 2), "rows": found, "explain": "\n".join(plan)}
        log(f"{name:45s} {label:5s} median {result[label]['ms_median']:8.2f} ms  ({found} rows)")
    return result


def readme_block(report: dict) -> str:
    seedt, cost = report["seed"]["timings"], report["write_cost"]
    lines = [BEGIN, "",
             f"Run {report['date']} on this machine (PostgreSQL {report['postgres']}, {os.cpu_count()} cores): "
             f"{report['rows']:,} deliveries, {report['subscribers']:,} subscribers, {report['campaigns']} campaigns. "
             f"Seeding took {sum(seedt.values()):.0f} s. Each query is `send_log.page` (50 rows + 1), "
             f"median of {report['runs']} runs; the deep page starts at the keyset cursor of row "
             f"{report['deep_at']:,}.",
             "", "| filters | first page (ms) | deep page (ms) |", "|---|---:|---:|"]
    for name, r in report["queries"].items():
        deep = f"{r['deep']['ms_median']:.1f}" if r["deep"] else "— (fewer rows)"
        lines.append(f"| {name} | {r['first']['ms_median']:.1f} | {deep} |")
    w, wo = cost["with"], cost["without"]
    lines += ["", f"Write cost of the four send-log indexes, one campaign of {w['rows']:,} recipients on top of "
              f"the {report['rows']:,} rows (snapshot INSERT, then three moves in 5,000-row slices):", "",
              "| step | without (s) | with (s) |", "|---|---:|---:|"]
    for key in ("snapshot_insert_s", "move_to_queued_s", "move_to_sending_s", "move_to_sent_s"):
        lines.append(f"| {key[:-2].replace('_', ' ')} | {wo[key]:.2f} | {w[key]:.2f} |")
    lines += ["", "CREATE INDEX on the full table: " + ", ".join(
        f"`{k}` {v:.1f} s ({cost['index_bytes'].get(k, 0) / 2**20:.0f} MiB)" for k, v in cost["create_index_s"].items())
        + ".", ""]
    for name, r in report["queries"].items():
        for label in ("first", "deep"):
            if r[label]:
                lines += [f"<details><summary>EXPLAIN: {name}, {label} page</summary>", "", "```",
                          r[label]["explain"], "```", "", "</details>", ""]
    return "\n".join(lines + [END])


def write_readme(block: str) -> None:
    path = BENCH / "README.md"
    text = path.read_text()
    if BEGIN in text and END in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text += "\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--subscribers", type=int, default=500_000)
    p.add_argument("--campaigns", type=int, default=300)
    p.add_argument("--probe", type=int, default=200_000, help="recipients of the write-cost campaign")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--deep-at", type=int, default=20_000)
    p.add_argument("--no-readme", action="store_true", help="write only the JSON")
    args = p.parse_args()
    url, name = platform_db.create_database("nlsendlog_")
    log(f"database {name}")
    try:
        env = {"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "INSTANCE_PATH": tempfile.mkdtemp(prefix="nlsendlog-"), "REDIS_URL": "redis://127.0.0.1:6379/15",
               "BASE_URL": "http://127.0.0.1:5000"}
        os.environ.update(env)
        platform_db.migrate({**os.environ})
        with psycopg.connect(url, autocommit=True) as conn:
            seeded = seed(conn, args.rows, args.subscribers, args.campaigns)
            log(f"seeded: {seeded['timings']}")
            cost = write_cost(conn, min(args.probe, args.subscribers), seeded["indexes"])
            postgres = conn.execute("SHOW server_version").fetchone()[0]
        from newsletter import create_app

        app = create_app()
        queries = {}
        with app.app_context():
            for case, kw in cases(args.campaigns, seeded["per_campaign"]):
                queries[case] = measure(app, case, kw, args.runs, args.deep_at)
            from newsletter.extensions import db
            db.session.remove()
            db.engine.dispose()
        report = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(),
                  "rows": args.rows, "subscribers": args.subscribers, "campaigns": args.campaigns,
                  "runs": args.runs, "deep_at": args.deep_at, "postgres": postgres,
                  "seed": {"timings": seeded["timings"]}, "write_cost": cost, "queries": queries}
        out = BENCH / "results" / f"send_log-{report['date']}.json"
        out.write_text(json.dumps(report, indent=1, default=str))
        log(f"wrote {out}")
        if not args.no_readme:
            write_readme(readme_block(report))
            log("updated bench/README.md")
    finally:
        platform_db.drop_database(name)
        log(f"dropped {name}")


if __name__ == "__main__":
    main()
