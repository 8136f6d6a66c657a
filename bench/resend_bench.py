"""Resend to non-openers and engagement webhooks at scale, on PostgreSQL (no workers, no Redis).

    .venv/bin/python bench/resend_bench.py [recipients]   (default 1,000,000)

A throwaway database with N confirmed subscribers on one list, a sent `individual` campaign to
all of them (N deliveries), 30 % human openers of whom a third also clicked (machine events
never reach `engagement_uniques`, so they need no rows here); then times `resend.reach` (the
page's two counts), the resend's full send snapshot (`recipients.snapshot`, chunks of 20,000)
and one 5,000-event flush batch without and with an
endpoint subscribed to email.opened. Prints one JSON object.
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid

import psycopg

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the project root

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def main(n: int) -> dict:
    name = f"w2bresend_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    try:
        return run(url, n)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, n: int) -> dict:
    os.environ.update({"DATABASE_URL": url, "NEWSLETTER_ENV": "testing", "REDIS_URL": "redis://127.0.0.1:1/0"})
    from flask_migrate import upgrade

    from newsletter import create_app
    from newsletter.extensions import db
    from newsletter.services.campaigns import recipients, resend
    from newsletter.services.engagement import flush
    from newsletter.services.webhooks import webhooks

    app = create_app({"WEBHOOK_ALLOWED_NETWORKS": ["127.0.0.0/8"]})
    out: dict = {"recipients": n}
    with app.app_context():
        upgrade()
        started = time.perf_counter()
        raw = db.session.connection().exec_driver_sql
        raw("INSERT INTO lists (id, name, description, opt_in, public, created_at, updated_at) "
            "VALUES (1, 'All', '', 'single', false, now(), now())")
        raw("INSERT INTO subscribers (email, name, attributes, status, token_version, created_at, updated_at) "
            "SELECT 'p' || g || '@example.com', '', '{}', 'confirmed', 0, now(), now() "
            f"FROM generate_series(1, {n}) g")
        raw("INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
            "SELECT id, 1, 'confirmed', now(), now() FROM subscribers")
        raw("INSERT INTO campaigns (id, name, subject, from_name, from_email, reply_to, html, text, tracking, status, "
            "status_reason, created_at, updated_at, recipients, sent, failed, cancelled, skipped_suppressed, "
            "skipped_unsubscribed, skipped_unconfirmed, duplicates) VALUES (1, 'Original', 'Hello', '', "
            "'news@example.com', '', '<p>Hi</p>', '', 'individual', 'sent', '', now(), now(), "
            f"{n}, {n}, 0, 0, 0, 0, 0, 0)")
        raw("INSERT INTO campaign_lists VALUES (1, 1)")
        raw("INSERT INTO deliveries (campaign_id, subscriber_id, email, status, attempts, created_at, updated_at, "
            "smtp_message, worker) SELECT 1, id, email, 'sent', 1, now(), now(), '', '' FROM subscribers")
        raw("INSERT INTO engagement_uniques SELECT 1, 'open', 0, id FROM subscribers WHERE id %% 10 < 3")
        raw("INSERT INTO engagement_uniques SELECT 1, 'click', 0, id FROM subscribers WHERE id %% 10 = 0")
        raw("SELECT setval('campaigns_id_seq', 1)")
        db.session.commit()
        raw = db.session.connection().exec_driver_sql
        raw("ANALYZE")
        db.session.commit()
        out["setup_s"] = round(time.perf_counter() - started, 1)

        started = time.perf_counter()
        reach = resend.reach(1)
        out["reach_ms"] = round((time.perf_counter() - started) * 1000)
        out["reach"] = {k.value: v for k, v in reach.items()}
        draft = resend.create(1, "non_openers", subject="In case you missed it")
        started = time.perf_counter()
        out["snapshot_recipients"] = recipients.snapshot(draft.id)
        out["snapshot_s"] = round(time.perf_counter() - started, 2)

        batch = [["open", 1, 0, 1 + i * 7 % n, i % 2, "", 1_800_000_000 + i] for i in range(5000)]
        for label, listening in (("flush_5000_no_listener_ms", False), ("flush_5000_one_listener_ms", True)):
            if listening:
                webhooks.create("http://127.0.0.1:9/hook", "bench", ["email.opened"])
            started = time.perf_counter()
            flush.apply(f"bench-{label}", batch)
            out[label] = round((time.perf_counter() - started) * 1000)
        out["webhook_rows"] = db.session.connection().exec_driver_sql(
            "SELECT count(*) FROM webhook_deliveries").scalar()
    return out


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)))
