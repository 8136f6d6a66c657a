"""Segment count bench: the live count's service call on 1,000,000 subscribers (PostgreSQL).

    .venv/bin/python bench/segment_bench.py                 # ~3-5 minutes on 2 cores
    .venv/bin/python bench/segment_bench.py --runs 11       # fewer repetitions

1. A throwaway PostgreSQL database (`nlsegbench_<pid>_<hex>`, its own prefix: no other bench's
   cleanup drops it), migrated to head (so with the GIN index on subscribers.attributes).
2. 1,000,000 subscribers loaded with COPY (the GIN index dropped for the load and built again
   after, timed), with varied attributes: plan (free/pro/team), country (20), age (mostly
   numbers, some numeric strings, some "n/a"), score (floats), birthday (ISO dates, some not),
   source; signup dates over two years; statuses mostly confirmed. One list with half of them,
   an individually tracked campaign with opens and clicks for 10 %, hard/soft bounces for 1 %.
   VACUUM (ANALYZE).
3. `segments.live_count(rules)` — what `POST /api/v1/segments/count` and the builder's live
   count call: exact within estimate.BUDGET_MS, else an estimate from sampled pages — for each
   typical rule set, `--runs` times in a fresh transaction each (median, p95, min, max in ms),
   with its answer (exact or an estimate, its margin, and whether the exact figure lies within
   it); then `segments.count(rules)`, the exact count (what `exact: true` and a campaign's
   snapshot wait for), the same way, and its EXPLAIN (ANALYZE, BUFFERS) once.

Writes bench/results/segments-<date>-<commit>.json. The database is dropped on the way out.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
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
PREFIX = "nlsegbench_"
NOW = datetime.now(UTC)
COUNTRIES = ["DE", "FR", "US", "GB", "ES", "IT", "NL", "BE", "SE", "PL", "PT", "AT", "CH", "DK", "NO", "FI", "IE",
             "CZ", "CA", "AU"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com", "mail.de", "orange.fr", "web.de", "proton.me"]


def log(message: str) -> None:
    print(f"[segments] {message}", flush=True)



def attributes(rng: random.Random) -> dict:
    found: dict = {"plan": rng.choices(["free", "pro", "team"], [70, 25, 5])[0],
                   "country": rng.choice(COUNTRIES), "source": rng.choice(["form", "import", "api", "event"])}
    roll = rng.random()
    if roll < 0.85:
        found["age"] = rng.randint(18, 80)
    elif roll < 0.95:
        found["age"] = str(rng.randint(18, 80))
    elif roll < 0.97:
        found["age"] = "n/a"
    if rng.random() < 0.6:
        found["score"] = round(rng.uniform(0, 100), 1)
    if rng.random() < 0.5:
        found["birthday"] = (date(1950, 1, 1) + timedelta(days=rng.randint(0, 20_000))).isoformat()
    elif rng.random() < 0.05:
        found["birthday"] = "soon"
    return found


def load_subscribers(conn: psycopg.Connection, n: int, rng: random.Random) -> dict:
    """COPY `n` subscribers in; the GIN index dropped first and built after (both timed)."""
    timings = {}
    conn.execute("DROP INDEX IF EXISTS ix_subscribers_attributes_gin")
    t = time.perf_counter()
    statuses = ["confirmed"] * 85 + ["unconfirmed"] * 8 + ["unsubscribed"] * 5 + ["bounced"] * 2
    with conn.cursor().copy("COPY subscribers (email, name, attributes, status, created_at, updated_at, "
                            "confirmed_at, token_version) FROM STDIN") as copy:
        lines = []
        for i in range(n):
            created = (NOW - timedelta(seconds=rng.randint(0, 730 * 86_400))).isoformat()
            attrs = json.dumps(attributes(rng)).replace("\\", "\\\\")
            lines.append(f"s{i:07d}@{rng.choice(DOMAINS)}\tPerson {i}\t{attrs}\t{rng.choice(statuses)}\t"
                         f"{created}\t{created}\t{created}\t0\n")
            if len(lines) == 20_000:
                copy.write("".join(lines))
                lines = []
        copy.write("".join(lines))
    timings["copy_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    conn.execute("CREATE INDEX ix_subscribers_attributes_gin ON subscribers USING gin (attributes)")
    timings["gin_index_s"] = round(time.perf_counter() - t, 1)
    return timings


def load_rest(conn: psycopg.Connection) -> dict[str, int]:
    """A list with half the subscribers, a tracked campaign with engagement, some bounces (server-side)."""
    t = time.perf_counter()
    list_id = conn.execute("INSERT INTO lists (name, description, opt_in, public, created_at, updated_at) "
                           "VALUES ('Weekly', '', 'single', false, now(), now()) RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at) "
                 "SELECT id, %s, CASE WHEN id %% 10 = 0 THEN 'unsubscribed' ELSE 'confirmed' END, created_at, "
                 "created_at FROM subscribers WHERE id %% 2 = 0", (list_id,))
    campaign_id = conn.execute(
        "INSERT INTO campaigns (name, subject, from_name, from_email, reply_to, html, text, tracking, pool, status, "
        "status_reason, created_at, updated_at, recipients, sent, failed, cancelled, bounced, complained, "
        "skipped_suppressed, skipped_unsubscribed, skipped_unconfirmed, duplicates) VALUES ('Bench', 's', '', "
        "'n@example.com', '', '<p>x</p>', '', 'individual', 'default', 'sent', '', now(), now(), 0, 0, 0, 0, 0, 0, "
        "0, 0, 0, 0) RETURNING id").fetchone()[0]
    conn.execute("INSERT INTO engagement_events (campaign_id, subscriber_id, kind, machine, reason, at) "
                 "SELECT %s, id, CASE WHEN id %% 3 = 0 THEN 'click' ELSE 'open' END, id %% 7 = 0, '', "
                 "now() - (id %% 60) * interval '1 day' FROM subscribers WHERE id %% 10 = 1", (campaign_id,))
    conn.execute("INSERT INTO engagement_uniques (campaign_id, kind, link_id, subscriber_id) "
                 "SELECT DISTINCT campaign_id, kind, 0, subscriber_id FROM engagement_events WHERE NOT machine")
    conn.execute("INSERT INTO bounces (type, source, email, subscriber_id, status_code, diagnostic, event_id, "
                 "created_at) SELECT CASE WHEN id % 2 = 0 THEN 'hard' ELSE 'soft' END, 'api', email, id, '5.1.1', "
                 "'', '', now() FROM subscribers WHERE id % 100 = 7")
    # VACUUM, not only ANALYZE: it sets the visibility map (index-only scans skip the heap), which
    # autovacuum does after a load of this size anyway; without it every count read the heap too.
    conn.execute("VACUUM (ANALYZE)")
    return {"list_id": list_id, "campaign_id": campaign_id, "seconds": round(time.perf_counter() - t, 1)}


def typical_rules(list_id: int, campaign_id: int) -> dict[str, dict]:
    def group(match: str, *rules: dict) -> dict:
        return {"match": match, "rules": list(rules)}

    def attr(key: str, op: str, value=None) -> dict:
        return {"type": "attribute", "key": key, "op": op, **({"value": value} if value is not None else {})}

    return {
        "plan = pro": group("all", attr("plan", "equals", "pro")),
        "plan = pro AND country = DE": group("all", attr("plan", "equals", "pro"), attr("country", "equals", "DE")),
        "30 <= age < 40 (numbers, guarded cast)": group("all", attr("age", "gte", 30), attr("age", "lt", 40)),
        "birthday before 1970-01-01 (dates)": group("all", attr("birthday", "before", "1970-01-01")),
        "on the list AND signed up in the last 30 days": group(
            "all", {"type": "list", "op": "member", "list_id": list_id},
            {"type": "signup_date", "op": "within_last_days", "days": 30}),
        "gmail.com OR country = FR": group("any", {"type": "email_domain", "op": "equals", "value": "gmail.com"},
                                           attr("country", "equals", "FR")),
        "opened any campaign in the last 30 days AND confirmed": group(
            "all", {"type": "engagement", "op": "opened", "days": 30},
            {"type": "status", "op": "equals", "value": "confirmed"}),
        "clicked the campaign (uniques)": group("all", {"type": "engagement", "op": "clicked",
                                                        "campaign_id": campaign_id}),
        "pro AND no hard bounce AND (score > 50 OR source = api)": group(
            "all", attr("plan", "equals", "pro"), {"type": "bounce", "op": "has_not", "bounce_type": "hard"},
            group("any", attr("score", "gt", 50), attr("source", "equals", "api"))),
        "plan contains ea (no index: a full scan)": group("all", attr("plan", "contains", "ea")),
    }


def driver_params(params: dict) -> dict:
    """The compiled statement's parameters as the driver takes them (EXPLAIN runs the SQL text)."""
    from psycopg.types.json import Jsonb

    return {key: Jsonb(value) if isinstance(value, dict) else getattr(value, "value", value)
            for key, value in params.items()}


def timed(call, runs: int) -> dict:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {"ms_median": round(statistics.median(times), 2), "ms_p95": round(p95, 2), "ms_min": round(times[0], 2),
            "ms_max": round(times[-1], 2), "runs": runs}


def interleaved(arms: dict, runs: int) -> dict:
    """`runs` rounds, each arm once a round (the order alternating), each arm `(setup, call)`:
    `setup` runs untimed in the transaction `call` then uses and ends. Figures per arm, as timed()."""
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    order = list(arms)
    for round_ in range(runs):
        for arm in order if round_ % 2 == 0 else order[::-1]:
            setup, call = arms[arm]
            setup()
            t = time.perf_counter()
            call()
            times[arm].append((time.perf_counter() - t) * 1000)
    figures = {}
    for arm, found in times.items():
        found.sort()
        p95 = found[min(len(found) - 1, max(0, round(0.95 * len(found)) - 1))]
        figures[arm] = {"ms_median": round(statistics.median(found), 2), "ms_p95": round(p95, 2),
                        "ms_min": round(found[0], 2), "ms_max": round(found[-1], 2), "runs": runs}
    return figures


def without_index(rules_label_runs: list, index: str, runs: int) -> dict:
    """The live and the exact count of each rule set with the database as it is and with `index`
    dropped inside the measured call's transaction (rolled back after: the index is back for the
    next call), interleaved in one run: the index's effect with the machine's load the same for both."""
    from newsletter.extensions import db
    from newsletter.services.audience.segments import segments

    def drop() -> None:
        db.session.execute(db.text(f'DROP INDEX "{index}"'))  # the bench's own name, not input

    def nothing() -> None:
        pass

    found = {}
    for label, rules in rules_label_runs:
        answers = {}
        for arm, setup in (("with", nothing), ("without", drop)):
            setup()
            answer = segments.live_count(rules)
            db.session.rollback()
            answers[arm] = {"count": answer.value, "exact": answer.exact, "margin": answer.margin}

        def live(rules=rules) -> None:
            segments.live_count(rules)
            db.session.rollback()

        def exact(rules=rules) -> None:
            segments.count(rules)
            db.session.rollback()

        found[label] = {"answers": answers, "rules": rules,
                        "live": interleaved({"with": (nothing, live), "without": (drop, live)}, runs),
                        "exact_count": interleaved({"with": (nothing, exact), "without": (drop, exact)}, runs)}
        log(f"{label:58s} live median with {found[label]['live']['with']['ms_median']:8.2f} ms, without "
            f"{found[label]['live']['without']['ms_median']:8.2f} ms; exact with "
            f"{found[label]['exact_count']['with']['ms_median']:8.2f}, without "
            f"{found[label]['exact_count']['without']['ms_median']:8.2f}")
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--subscribers", type=int, default=1_000_000)
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--out", type=Path, default=None, help="where to write the JSON (default: bench/results/)")
    p.add_argument("--keep", action="store_true", help="seed only, keep the database and print its URL "
                   "(to try plans by hand; drop it yourself)")
    p.add_argument("--without-index", metavar="NAME", help="instead: each rule set's live and exact count "
                   "with the database as migrated and with index NAME dropped (rolled back), interleaved")
    p.add_argument("--only", metavar="TEXT", default="", help="only the rule sets whose label contains TEXT")
    args = p.parse_args()
    started = time.perf_counter()
    load_before = os.getloadavg()
    url, name = platform_db.create_database(PREFIX)
    log(f"database {name}")
    instance = tempfile.mkdtemp(prefix="nlsegbench-")
    try:
        env = {"DATABASE_URL": url, "NEWSLETTER_ENV": "production", "SECRET_KEY": secrets.token_urlsafe(48),
               "INSTANCE_PATH": instance, "BASE_URL": "https://127.0.0.1"}
        os.environ.update(env)
        platform_db.migrate({**os.environ})
        rng = random.Random(17)
        with psycopg.connect(url, autocommit=True) as conn:
            seed = load_subscribers(conn, args.subscribers, rng)
            rest = load_rest(conn)
            seed["rest_s"] = rest["seconds"]
            postgres = conn.execute("SHOW server_version").fetchone()[0]
            sizes = {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                     for table in ("subscribers", "subscriptions", "engagement_events", "engagement_uniques",
                                   "bounces")}
        log(f"seeded {sizes} in {seed}")
        if args.keep:
            log(f"kept: {url} list {rest['list_id']} campaign {rest['campaign_id']}")
            name = ""
            return

        from newsletter import create_app

        app = create_app()
        measured: dict[str, dict] = {}
        with app.app_context():
            from sqlalchemy import func, select

            from newsletter.extensions import db
            from newsletter.models import Subscriber
            from newsletter.services.audience.segments import estimate, segments
            from newsletter.services.audience.segments.compile import compile_rules

            chosen = {label: rules for label, rules in typical_rules(rest["list_id"], rest["campaign_id"]).items()
                      if args.only in label}
            if args.without_index:
                ab = without_index(list(chosen.items()), args.without_index, args.runs)
                commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip()
                out = args.out or BENCH / "results" / f"segments-without-index-{date.today().isoformat()}-{commit}.json"
                out.write_text(json.dumps({
                    "date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(), "commit": commit,
                    "cores": os.cpu_count(), "load_average_before": load_before, "load_average": os.getloadavg(),
                    "postgres": postgres, "index": args.without_index, "budget_ms": estimate.BUDGET_MS,
                    "sample_pages": estimate.SAMPLE_PAGES, "subscribers": args.subscribers, "table_rows": sizes,
                    "seed": seed, "measured": ab, "total_s": round(time.perf_counter() - started, 1)},
                    indent=1, default=str))
                log(f"wrote {out}")
                return
            for label, rules in chosen.items():
                matched = segments.count(rules)  # warm: imports, the pool's first connection
                db.session.rollback()
                answer = segments.live_count(rules)
                db.session.rollback()

                def live(rules=rules):
                    segments.live_count(rules)
                    db.session.rollback()  # a fresh transaction each run, like a request

                def exact(rules=rules):
                    segments.count(rules)
                    db.session.rollback()

                figures = timed(live, args.runs)
                exact_figures = timed(exact, args.runs)
                statement = select(func.count()).select_from(Subscriber).where(
                    compile_rules(segments.validated(rules), NOW))
                compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
                db.session.execute(db.text("SET LOCAL jit = off"))
                plan = db.session.connection().exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + str(compiled), driver_params(compiled.params)).scalars().all()
                db.session.rollback()
                within = abs(answer.value - matched) <= answer.margin
                measured[label] = {**figures, "matched": matched, "answer": {
                    "count": answer.value, "exact": answer.exact, "margin": answer.margin, "sampled": answer.sampled,
                    "error": answer.value - matched, "exact_within_margin": within},
                    "exact_count": exact_figures, "rules": rules, "explain": plan}
                log(f"{label:58s} {matched:>9,} matched  live median {figures['ms_median']:8.2f} ms  "
                    f"p95 {figures['ms_p95']:8.2f} ms  {'exact' if answer.exact else 'estimate'} "
                    f"{answer.value:,} ± {answer.margin:,}  exact median {exact_figures['ms_median']:8.2f} ms")
            db.session.remove()
            db.engine.dispose()

        slowest = max(m["ms_median"] for m in measured.values())
        commit = os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip()
        result = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(), "commit": commit,
                  "cores": os.cpu_count(), "load_average": os.getloadavg(), "postgres": postgres,
                  "goal_ms": GOAL_MS, "budget_ms": estimate.BUDGET_MS, "sample_pages": estimate.SAMPLE_PAGES,
                  "load_average_before": load_before, "subscribers": args.subscribers, "table_rows": sizes,
                  "seed": seed,
                  "measured": measured, "slowest_median_ms": slowest,
                  "within_goal": {label: m["ms_median"] < GOAL_MS for label, m in measured.items()},
                  "total_s": round(time.perf_counter() - started, 1)}
        out = args.out or BENCH / "results" / f"segments-{result['date']}-{commit}.json"
        out.write_text(json.dumps(result, indent=1, default=str))
        log(f"slowest median {slowest} ms (goal < {GOAL_MS} ms); {result['total_s']} s in all; wrote {out}")
    finally:
        shutil.rmtree(instance, ignore_errors=True)
        if name:
            platform_db.drop_database(name)
            log(f"dropped {name}")


if __name__ == "__main__":
    main()
