"""What an A/B test adds to a send's set-up, on PostgreSQL: the snapshot with and without a test
(holding everyone, then releasing the test share), and the winner's release of the rest.

Usage: .venv/bin/python bench/ab_split_bench.py [--n 200000] [--share 20]
A throwaway database (platform_db), migrated, N confirmed subscribers on one list; the two
campaigns snapshot the same list one after the other; the best of --runs snapshots each.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import platform_db  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--share", type=int, default=20)
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    url, name = platform_db.create_database()
    redis_server = None
    try:
        env = {"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "INSTANCE_PATH": tempfile.mkdtemp(prefix="nlabbench-"), "BASE_URL": "https://127.0.0.1"}
        os.environ.update(env)
        from newsletter.devserver.embedded_redis import EmbeddedRedis
        redis_server = EmbeddedRedis(env["INSTANCE_PATH"]).start()
        platform_db.migrate({**os.environ})
        from newsletter import create_app

        app = create_app()
        with app.app_context():
            from sqlalchemy import delete, update

            from newsletter.extensions import db
            from newsletter.models import Campaign, Delivery
            from newsletter.services.campaigns import ab_tests, campaigns, recipients

            list_id = platform_db.make_audience(args.n)
            values = dict(name="Bench", subject="Hello", from_email="news@example.com", html="<p>Hi</p>",
                          list_ids=[list_id], tracking="individual")
            ab = {"variants": [{"subject": "A"}, {"subject": "B"}], "share": args.share, "metric": "opens",
                  "wait_minutes": 60, "mode": "manual"}
            results: dict[str, list[float]] = {"snapshot_plain_s": [], "snapshot_ab_s": [], "release_rest_s": []}
            for _ in range(args.runs):
                for key, extra in (("snapshot_plain_s", {}), ("snapshot_ab_s", {"ab_test": ab})):
                    campaign_id = campaigns.create(**values, **extra).id
                    campaigns.send_now(campaign_id)
                    started = time.perf_counter()
                    recipients.snapshot(campaign_id)
                    results[key].append(time.perf_counter() - started)
                    if extra:
                        started = time.perf_counter()
                        released = ab_tests.pick(campaign_id, "B", lambda *_: None)
                        results["release_rest_s"].append(time.perf_counter() - started)
                    db.session.execute(delete(Delivery).where(Delivery.campaign_id == campaign_id))
                    db.session.execute(update(Campaign).where(Campaign.id == campaign_id).values(status="cancelled"))
                    db.session.commit()
            print(json.dumps({"recipients": args.n, "share": args.share, "released": released, "runs": args.runs,
                              **{k: round(min(v), 2) for k, v in results.items()}}))
    finally:
        if redis_server is not None:
            redis_server.stop()
        platform_db.drop_database(name)


if __name__ == "__main__":
    main()
