"""Benchmark: CSV import and export rates, and subscriber search latency, on PostgreSQL.

    .venv/bin/python bench/import_bench.py --rows 1000000 [--database-url postgresql://...]

Creates a throwaway database, migrates it, generates a CSV, imports it through the same
service the Celery task calls, then times an export and search pages. Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CITIES = ["Berlin", "Köln", "Paris", "Lisboa", "Oslo", "Zürich", "Kraków", "Madrid"]


def generate_csv(path: Path, rows: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("email,name,city,plan\n")
        for i in range(rows):
            handle.write(f"user{i}.{rng.randrange(10**6)}@example{i % 997}.com,Person {i},"
                         f"{CITIES[i % len(CITIES)]},{'pro' if i % 7 == 0 else 'free'}\n")


def measure_export(list_id: int, rows: int) -> dict:
    """Stream the whole list as CSV (as the download does), counting rows and bytes."""
    from newsletter.services.audience import exports, subscribers

    t = time.perf_counter()
    lines = size = 0
    for chunk in exports.subscribers_csv(subscribers.make_filters(list_id=list_id)):
        size += len(chunk)
        lines += chunk.count("\n")
    elapsed = time.perf_counter() - t
    assert lines - 1 >= rows, (lines, rows)  # header + one line a subscriber (names have no newlines)
    return {"export_s": round(elapsed, 2), "export_rows_per_s": round(rows / elapsed), "export_bytes": size}


def measure_search(list_id: int, repeat: int = 20) -> dict:
    """Median ms of the admin search's first page and a deep page, for several filters."""
    import statistics

    from newsletter.services.audience import subscribers

    cases = {
        "newest": {}, "substring": {"q": "person 4242"}, "rare_substring": {"q": "zzz-no-match"},
        "status": {"status": "confirmed"}, "list": {"list_id": list_id},
        "attribute": {"attribute": ("city", "Oslo")},
    }
    out = {}
    for name, kwargs in cases.items():
        timings = []
        for _ in range(repeat):
            t = time.perf_counter()
            items, cursor = subscribers.search(limit=50, **kwargs)
            if cursor is not None:  # and the page after, as "next" does
                subscribers.search(limit=50, cursor=cursor, **kwargs)
            timings.append((time.perf_counter() - t) * 1000 / (2 if cursor is not None else 1))
        out[f"search_ms_{name}"] = round(statistics.median(timings), 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the database for inspection")
    args = parser.parse_args()

    from tests.conftest import _create_postgres_database, _drop_postgres_database
    from tests.support.processes import flask_cli

    instance = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    url, admin_url = _create_postgres_database(args.database_url)
    os.environ.update(NEWSLETTER_ENV="testing", INSTANCE_PATH=str(instance), DATABASE_URL=url,
                      REDIS_URL="redis://127.0.0.1:6379/0")
    try:
        assert flask_cli("db", "upgrade").returncode == 0
        from newsletter import create_app
        from newsletter.services.audience import imports, lists

        app = create_app()
        csv_path = instance / "people.csv"
        t = time.perf_counter()
        generate_csv(csv_path, args.rows)
        generated = time.perf_counter() - t
        results = {"rows": args.rows, "csv_bytes": csv_path.stat().st_size, "generate_s": round(generated, 2)}
        with app.app_context():
            list_id = lists.create("Everyone", "single").id
            with open(csv_path, "rb") as handle:
                job = imports.start(handle, "people.csv", list_ids=[list_id])
            kwargs = {"batch_size": args.batch_size} if args.batch_size else {}
            t = time.perf_counter()
            job = imports.run(job.id, **kwargs)
            elapsed = time.perf_counter() - t
            assert job.created == args.rows, (job.created, job.failure)
            results["import_s"] = round(elapsed, 2)
            results["import_rows_per_s"] = round(args.rows / elapsed)
            results.update(measure_export(list_id, args.rows))
            results.update(measure_search(list_id))
        print(json.dumps(results, indent=2))
    finally:
        if not args.keep:
            _drop_postgres_database(url, admin_url)


if __name__ == "__main__":
    main()
