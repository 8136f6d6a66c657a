"""A campaign's snapshot through a segment at 1M subscribers (PostgreSQL): how long freezing its
recipients into the delivery ledger takes, chunk by chunk as the send task does.

    .venv/bin/python bench/segment_bench.py --keep          # seeds a database, prints its URL
    .venv/bin/python bench/segment_snapshot.py URL          # then this, on that database
    .venv/bin/python bench/segment_snapshot.py URL "plan = pro"   # one rule set of segment_bench's

A segment per rule set below (saved through the service), a draft campaign targeting it alone,
`recipients.snapshot` timed (20,000 recipients a statement), the deliveries counted. Writes
bench/results/segment-snapshot-<date>-<commit>.json. Drop the database yourself afterwards.
"""
from __future__ import annotations

import json
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import segment_bench  # noqa: E402

RULE_SETS = ["plan = pro", "30 <= age < 40 (numbers, guarded cast)",
             "opened any campaign in the last 30 days AND confirmed"]


def main() -> None:
    url = sys.argv[1]
    os.environ.update({"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
                       "INSTANCE_PATH": tempfile.mkdtemp(prefix="nlsegsnap-"), "BASE_URL": "https://127.0.0.1"})
    from sqlalchemy import func, select

    from newsletter import create_app
    from newsletter.extensions import db
    from newsletter.models import Campaign, Delivery
    from newsletter.models.base import utcnow
    from newsletter.services.audience.segments import segments
    from newsletter.services.campaigns import campaigns, recipients

    load_before = os.getloadavg()
    app = create_app()
    measured = {}
    with app.app_context():
        rules_by_label = segment_bench.typical_rules(1, 1)
        for label in sys.argv[2:] or RULE_SETS:
            segment = segments.create(f"snap {label}", rules_by_label[label])
            campaign = campaigns.create(name=f"Snapshot {label}", subject="s", from_email="n@example.com",
                                        html="<p>x</p>", segment_ids=[segment.id], list_ids=[])
            db.session.execute(Campaign.__table__.update().where(Campaign.id == campaign.id)
                               .values(started_at=utcnow()))
            db.session.commit()
            matched = segments.count(rules_by_label[label])
            db.session.rollback()
            t = time.perf_counter()
            total = recipients.snapshot(campaign.id)
            seconds = time.perf_counter() - t
            frozen = db.session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.campaign_id == campaign.id))
            db.session.rollback()
            measured[label] = {"matched_any_status": matched, "recipients": total, "deliveries": frozen,
                               "seconds": round(seconds, 1), "per_second": round(frozen / seconds)}
            print(f"[snapshot] {label:58s} {matched:>9,} match  {frozen:>9,} frozen in {seconds:6.1f} s", flush=True)
    commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip()
    result = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(), "commit": commit,
              "load_average_before": load_before, "load_average": os.getloadavg(), "cores": os.cpu_count(),
              "measured": measured}
    out = BENCH / "results" / f"segment-snapshot-{result['date']}-{commit}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"[snapshot] wrote {out}")


if __name__ == "__main__":
    main()
