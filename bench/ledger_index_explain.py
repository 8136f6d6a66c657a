"""EXPLAIN ANALYZE of the queries that read `deliveries` by campaign without a status, with and without
ix_deliveries_campaign_id_id (dropped by migration 0026), on a ledger of --rows rows.

    .venv/bin/python bench/ledger_index_explain.py --rows 2000000 --campaigns 20

A throwaway database (`nlidxexplain_<pid>_<hex>`) migrated to 0025; subscribers and campaigns,
then the deliveries by generate_series (FK triggers off): every campaign sent (95 % `sent`,
failures, cancelled tails) but the last, which is mid-send (sent, committing, queued, fresh
pending rows, a few due retries). ANALYZE. Each query runs 3 times with the index and 3 times
without it (dropped inside a transaction that is rolled back), the last run's EXPLAIN (ANALYZE,
BUFFERS) kept. Prints a table; writes bench/results/<date>-<commit>-ledger-index-explain.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import platform_db  # noqa: E402

# The queries as the code sends them (SQLAlchemy's SQL, literal values), %(c)s: the campaign.
QUERIES = {
    # ledger.for_campaign before 0026 (one statement, ORDER BY id across every status)
    "for_campaign, old SQL, first page": "SELECT * FROM deliveries WHERE campaign_id = %(c)s ORDER BY id LIMIT 51",
    "for_campaign, old SQL, page after the middle":
        "SELECT * FROM deliveries WHERE campaign_id = %(c)s AND id > %(mid)s ORDER BY id LIMIT 51",
    # ledger.for_campaign now: one ordered probe per status, merged
    "for_campaign, new SQL, first page": "SELECT * FROM deliveries WHERE id IN (SELECT id FROM ({}) AS u) "
                                         "ORDER BY id LIMIT 51",
    "for_campaign, new SQL, page after the middle": "SELECT * FROM deliveries WHERE id IN (SELECT id FROM ({}) AS u) "
                                                    "ORDER BY id LIMIT 51",
    "cancel_unsent chunk, old SQL (status IN)":
        "SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status IN ('pending', 'queued') AND id > 0 "
        "ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED",
    "cancel_unsent chunk, new SQL (one status)":
        "SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status = 'pending' AND id > 0 "
        "ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED",
    "publish: due retries": "SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status = 'pending' "
                            "AND next_attempt_at <= now() ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED",
    "publish: fresh rows past the cursor": "SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status = 'pending' "
                                           "AND next_attempt_at IS NULL AND id > %(mid)s ORDER BY id LIMIT 5000",
    "recipients: ledger count": "SELECT count(*) FROM deliveries WHERE campaign_id = %(c)s",
    "recipients: snapshot resume point": "SELECT max(subscriber_id) FROM deliveries WHERE campaign_id = %(c)s",
    "reports: first and last send": "SELECT min(sent_at), max(sent_at) FROM deliveries WHERE campaign_id = %(c)s",
    "in_flight: fresh at or below the cursor": "SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status = "
                                               "'pending' AND next_attempt_at IS NULL AND id <= %(mid)s LIMIT 1",
}
STATUSES = ("pending", "queued", "sending", "committing", "sent", "failed", "cancelled")
MERGED = " UNION ALL ".join(f"SELECT id FROM (SELECT id FROM deliveries WHERE campaign_id = %(c)s AND status = '{s}' "
                            f"AND id > {{after}} ORDER BY id LIMIT 51) AS p{i}" for i, s in enumerate(STATUSES))


def seed(conn: psycopg.Connection, rows: int, campaigns: int) -> dict:
    per = rows // campaigns
    conn.execute("SET session_replication_role = replica")  # no FK triggers for the load
    conn.execute("INSERT INTO subscribers " + platform_db.fill_row_sql(conn, "subscribers", {
        "email": "'user' || g || '@example.org'", "name": "'User ' || g", "attributes": "'{}'",
        "status": "'confirmed'", "created_at": "now()", "updated_at": "now()"}) + " FROM generate_series(1, %s) g",
                 (per,))
    conn.execute("INSERT INTO campaigns " + platform_db.fill_row_sql(conn, "campaigns", {
        "name": "'Campaign ' || g", "status": "CASE WHEN g = %(n)s THEN 'sending' ELSE 'sent' END",
        "tracking": "'off'"}) + " FROM generate_series(1, %(n)s) g", {"n": campaigns})
    last = conn.execute("SELECT max(id) FROM campaigns").fetchone()[0]
    conn.execute(
        "INSERT INTO deliveries (campaign_id, subscriber_id, email, status, attempts, smtp_code, smtp_message, "
        "worker, created_at, updated_at, sent_at, next_attempt_at) "
        "SELECT c, s, 'user' || s || '@example.org', st, 1, CASE st WHEN 'sent' THEN 250 WHEN 'failed' THEN 550 END, "
        "'', 'w', t, t + (s %% 3600) * interval '1 second', CASE st WHEN 'sent' THEN t END, "
        "CASE WHEN st = 'pending' AND s %% 50 = 0 THEN now() - interval '1 second' END "
        "FROM (SELECT c, s, now() - (%(last)s - c) * interval '1 day' AS t, "
        "CASE WHEN c < %(last)s THEN (CASE WHEN s %% 100 < 95 THEN 'sent' WHEN s %% 100 < 98 THEN 'failed' "
        "ELSE 'cancelled' END) ELSE (CASE WHEN s < %(per)s * 0.4 THEN 'sent' WHEN s < %(per)s * 0.4 + 16 "
        "THEN 'committing' WHEN s < %(per)s * 0.5 THEN 'queued' ELSE 'pending' END) END AS st "
        "FROM generate_series(1, %(last)s) c, generate_series(1, %(per)s) s) AS g ORDER BY c, s",
        {"last": last, "per": per})
    conn.execute("SET session_replication_role = DEFAULT")
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE deliveries")
    conn.autocommit = False
    lo, hi = conn.execute("SELECT min(id), max(id) FROM deliveries WHERE campaign_id = %s", (last,)).fetchone()
    return {"campaign": last, "mid": (lo + hi) // 2, "old_campaign": 1}


def run(conn: psycopg.Connection, sql: str, params: dict) -> tuple[float, str]:
    times, plan = [], ""
    for _ in range(3):
        lines = [r[0] for r in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()]
        times.append(float(next(line for line in lines if line.startswith("Execution Time")).split()[2]))
        plan = "\n".join(lines)
    return min(times), plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--campaigns", type=int, default=20)
    args = parser.parse_args()
    with platform_db.migrated_database("nlidxexplain_") as url:
        with psycopg.connect(url) as conn:
            conn.execute("SELECT 1")
            # at 0025 (with the index): the migrations of this tree run to head; put it back for the "with" side
            if not conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = 'ix_deliveries_campaign_id_id'").fetchone():
                conn.execute("CREATE INDEX ix_deliveries_campaign_id_id ON deliveries (campaign_id, id)")
            conn.commit()
            where = seed(conn, args.rows, args.campaigns)
            results = []
            for campaign_kind in ("campaign", "old_campaign"):
                for label, sql in QUERIES.items():
                    if "{}" in sql:
                        sql = sql.format(MERGED.format(after="%(mid)s" if "middle" in label else "0"))
                    params = {"c": where[campaign_kind], "mid": where["mid"] if campaign_kind == "campaign" else 0}
                    with_ms, with_plan = run(conn, sql, params)
                    conn.execute("DROP INDEX ix_deliveries_campaign_id_id")
                    without_ms, without_plan = run(conn, sql, params)
                    conn.rollback()  # the index is back
                    results.append({"query": label, "campaign": "sending (last)" if campaign_kind == "campaign"
                                    else "oldest, sent", "with_ms": with_ms, "without_ms": without_ms,
                                    "with_plan": with_plan, "without_plan": without_plan})
                    top = (without_plan.splitlines() + ["", ""])[1].strip()[:90]
                    print(f"{results[-1]['campaign']:15} {label:48} with {with_ms:9.3f} ms  without {without_ms:9.3f} "
                          f"ms  [{top}]", flush=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        out = BENCH / "results" / f"{datetime.now(UTC):%Y-%m-%d}-{commit}-ledger-index-explain.json"
        out.write_text(json.dumps({"commit": commit, "rows": args.rows, "campaigns": args.campaigns,
                                   "load_average": os.getloadavg(), "results": results}, indent=1) + "\n")
        print("wrote", out)


if __name__ == "__main__":
    main()
