"""Segment exact counts on two seeded databases, interleaved: the code/data or the machine?

    .venv/bin/python bench/segment_regression.py --seed-at 90e0f3a        # seed with that commit's bench; keep it
    .venv/bin/python bench/segment_bench.py --keep                        # seed with today's bench; keep it
    .venv/bin/python bench/segment_regression.py OLD_URL NEW_URL --rounds 9   # then drop both yourself

Why: the exact counts measured at 2a904b6 (2026-12-07) were 2.6-3.5 times those at 90e0f3a
(2026-12-06) at a similar load average, with the same plans and the same buffers (the EXPLAINs in
both results JSONs). Between the two, the seeded database changed (VACUUM (ANALYZE) instead of
ANALYZE, migrations 0017-0022, `track_io_timing = on` from platform_db.create_database) and so
did the machine. This runs the same statements on a database seeded by the old commit's bench
code (its migrations, its ANALYZE, no track_io_timing) and on one seeded by today's, in one
process, alternating every statement, also with track_io_timing switched the other way in each:
if the ratios stay near 1, the slowdown was the machine, not the code or the data.

The statements are the exact counts segments.count() sends for four bench rule sets (the SQL
text equals the Filter lines of both EXPLAINs), each in its own transaction with jit off, as
estimate.exact() runs them. Round 0 warms (hint bits, caches) and is not counted.
Writes bench/results/segments-regression-<date>-<commit>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

NUMBER = ("CASE WHEN jsonb_typeof(attributes->'age') = 'number' THEN (attributes->'age')::numeric "
          "WHEN jsonb_typeof(attributes->'age') = 'string' AND (attributes->>'age') ~ "
          "'^\\s*-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][-+]?[0-9]{1,3})?\\s*$' THEN (attributes->>'age')::numeric END")
STATEMENTS = {
    "30 <= age < 40 (numbers, guarded cast)": (
        f"SELECT count(*) FROM subscribers WHERE {NUMBER} >= 30 AND {NUMBER} < 40"),
    "birthday before 1970-01-01 (dates)": (
        "SELECT count(*) FROM subscribers WHERE CASE WHEN (attributes->>'birthday') ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' "
        "THEN substr(attributes->>'birthday', 1, 10) END < '1970-01-01'"),
    "plan contains ea (no index: a full scan)": (
        "SELECT count(*) FROM subscribers WHERE (attributes->>'plan') ILIKE '%ea%'"),
    "opened any campaign in the last 30 days AND confirmed": (
        "SELECT count(*) FROM subscribers WHERE status = 'confirmed' AND EXISTS (SELECT 1 FROM engagement_events e "
        "WHERE e.subscriber_id = subscribers.id AND e.kind IN ('open', 'click') AND e.machine IS false "
        "AND e.at >= now() - interval '30 days')"),
}


def seed_at(commit: str, subscribers: int) -> None:
    """Seed a database with the segment bench of `commit` (its migrations and seeding), keep it."""
    tree, instance = Path(tempfile.mkdtemp(prefix="nlsegregress-")), tempfile.mkdtemp(prefix="nlsegregress-")
    try:
        url = _seed_from(tree, instance, commit, subscribers)
    finally:
        shutil.rmtree(tree, ignore_errors=True)
        shutil.rmtree(instance, ignore_errors=True)
    print(f"kept (seeded at {commit}): {url}  (drop it yourself)", flush=True)


def _seed_from(tree: Path, instance: str, commit: str, subscribers: int) -> str:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / ".venv").symlink_to((ROOT / ".venv").resolve())
    sys.path[:0] = [str(tree / "bench"), str(tree)]
    import platform_db  # noqa: PLC0415 - the old commit's, from the tree just unpacked
    import segment_bench  # noqa: PLC0415

    make = getattr(segment_bench, "create_database", None) or (lambda: platform_db.create_database("nlsegbench_"))
    url, _name = make()
    os.environ.update({"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
                       "INSTANCE_PATH": instance, "BASE_URL": "https://127.0.0.1"})
    platform_db.migrate({**os.environ})
    rng = random.Random(17)
    with psycopg.connect(url, autocommit=True) as conn:
        print(segment_bench.load_subscribers(conn, subscribers, rng), flush=True)
        print(segment_bench.load_rest(conn), flush=True)
    return url


def compare(old: str, new: str, rounds: int) -> dict:
    arms = [("old database", old, None), ("new database", new, None),
            ("new database, track_io_timing off", new, "off"), ("old database, track_io_timing on", old, "on")]
    conns = {url: psycopg.connect(url) for url in (old, new)}
    settings = {url: conns[url].execute("SELECT current_setting('track_io_timing'), (SELECT count(*) FROM "
                                        "pg_indexes WHERE tablename = 'engagement_events')").fetchone()
                for url in conns}
    times: dict[tuple[str, str], list[float]] = {(arm, label): [] for arm, _, _ in arms for label in STATEMENTS}
    counts: dict[tuple[str, str], int] = {}
    load_before = os.getloadavg()
    for round_ in range(rounds + 1):
        for label, sql in STATEMENTS.items():
            for arm, url, io_timing in arms:
                conn = conns[url]
                with conn.transaction():
                    conn.execute("SET LOCAL jit = off")
                    if io_timing:
                        conn.execute(f"SET LOCAL track_io_timing = {io_timing}")
                    started = time.perf_counter()
                    counts[(arm, label)] = conn.execute(sql).fetchone()[0]
                    elapsed = (time.perf_counter() - started) * 1000
                if round_:
                    times[(arm, label)].append(elapsed)
    for conn in conns.values():
        conn.close()
    measured: dict[str, dict] = {}
    for label in STATEMENTS:
        base = statistics.median(times[(arms[0][0], label)])
        measured[label] = {}
        for arm, _, _ in arms:
            median = statistics.median(times[(arm, label)])
            measured[label][arm] = {"ms_median": round(median, 1), "ms_min": round(min(times[(arm, label)]), 1),
                                    "ratio_to_old": round(median / base, 2), "count": counts[(arm, label)]}
            print(f"{label[:40]:40s} {arm:35s} median {median:8.1f} ms  x{median / base:.2f}  "
                  f"n={counts[(arm, label)]:,}", flush=True)
    return {"load_average_before": load_before, "load_average": os.getloadavg(), "rounds": rounds,
            "databases": {"old": {"track_io_timing": settings[old][0], "engagement_indexes": settings[old][1]},
                          "new": {"track_io_timing": settings[new][0], "engagement_indexes": settings[new][1]}},
            "measured": measured}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("old_url", nargs="?")
    p.add_argument("new_url", nargs="?")
    p.add_argument("--seed-at", metavar="COMMIT", help="seed a database with that commit's segment bench, keep it")
    p.add_argument("--subscribers", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--note", default="", help="what the two databases are (kept in the JSON)")
    args = p.parse_args()
    if args.seed_at:
        seed_at(args.seed_at, args.subscribers)
        return
    if not (args.old_url and args.new_url):
        p.error("give OLD_URL and NEW_URL (or --seed-at COMMIT)")
    result = compare(args.old_url, args.new_url, args.rounds)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    result = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(), "commit": commit,
              "cores": os.cpu_count(), "note": args.note, **result}
    out = BENCH / "results" / f"segments-regression-{result['date']}-{commit}.json"
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
