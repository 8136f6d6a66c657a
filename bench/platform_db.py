"""The platform variant's database: a throwaway PostgreSQL database, migrated, with N confirmed subscribers.

Mirrors tests/conftest.py `_create_postgres_database` and tests/pipeline/conftest.py
`make_audience` (kept here so that edits to the test suite cannot break the bench), with
inserts in chunks so 1,000,000 rows stay under PostgreSQL's 65,535 parameters a statement.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import psycopg

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CHUNK = 5_000

# The service modules the bench calls: their path today, then their flat path before the services
# restructure (issue 13), so that `--compare` can set up and read back the old code the same way.
SERVICES = {
    "campaigns": ("newsletter.services.campaigns.campaigns", "newsletter.services.campaigns"),
    "api_keys": ("newsletter.services.accounts.api_keys", "newsletter.services.api_keys"),
    "campaign_send": ("newsletter.services.campaigns.send", "newsletter.services.campaign_send"),
    "campaign_context": ("newsletter.services.campaigns.context", "newsletter.services.campaign_context"),
    "ledger": ("newsletter.services.delivery.ledger", "newsletter.services.deliveries"),
}

# A typical newsletter body (~3 KB as sent): a greeting, two short stories with links, a footer.
HTML = """<h1>Spring news for {{ subscriber.name }}</h1>
<p>Hello {{ subscriber.name }}, here is what happened in {{ subscriber.attributes.city }} this month.</p>
<h2>The garden opens again</h2>
<p>After a long winter the community garden opens on Saturday. Volunteers are welcome from nine;
bring gloves, we bring coffee. <a href="https://example.com/garden">Read more</a></p>
<h2>Workshops for beginners</h2>
<p>Bread baking on Tuesdays, bicycle repair on Thursdays: twelve places a session, so book early.
<a href="https://example.com/workshops">See the schedule</a></p>
<p>See you soon,<br>The team</p>
<p><a href="{{ web_view_url }}">View in your browser</a> · <a href="{{ preferences_url }}">Preferences</a> ·
<a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
"""
SUBJECT = "Spring news for {{ subscriber.name }}"


# `nlsendbench_<pid>_<hex>`: the pid of the bench that made it, so `drop_leftovers` drops only the
# databases of benches that are gone. (Before, every `nlbench_*` was dropped at each start, and a
# second bench started on this shared machine dropped the first one's database mid-run; benches
# from that code still do that to `nlbench_*`, hence a prefix of our own.)
PREFIX = "nlsendbench_"


def create_database(prefix: str = PREFIX) -> tuple[str, str]:
    """Create `<prefix><pid>_<hex>` (nlsendbench_ by default) with I/O timing on; returns (its URL, its
    name). Only PREFIX's databases are swept by drop_leftovers(): another bench passes its own prefix."""
    name = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'ALTER DATABASE "{name}" SET track_io_timing = on')
    return f"postgresql://postgres@127.0.0.1:5432/{name}", name


def fill_row_sql(conn: psycopg.Connection, table: str, values: dict[str, str]) -> str:
    """An INSERT ... SELECT column list for `table`: our values, plus a neutral one for every other
    NOT NULL column without a default (the table may gain columns after a bench was written)."""
    rows = conn.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s "
                        "AND is_nullable = 'NO' AND column_default IS NULL", (table,)).fetchall()
    neutral = {"integer": "0", "bigint": "0", "boolean": "false", "json": "'{}'", "jsonb": "'{}'",
               "timestamp with time zone": "now()", "double precision": "0"}
    filled = dict(values)
    for column, kind in rows:
        if column not in filled and column != "id":
            filled[column] = neutral.get(kind, "''")
    return f"({', '.join(filled)}) SELECT {', '.join(filled.values())}"


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_database(prefix: str) -> Iterator[str]:
    """A database of its own, migrated to this tree's head: its URL; dropped on the way out."""
    url, name = create_database(prefix)
    try:
        migrate({**os.environ, "DATABASE_URL": url})
        yield url
    finally:
        drop_database(name)


def drop_leftovers() -> list[str]:
    """Databases left by a bench that was SIGKILLed (no finally ran), whose process is gone:
    dropped at the next start. Those of a bench still running are left alone."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                            (PREFIX.replace("_", "\\_") + "%",))]
    gone = [name for name in names if not _alive(name[len(PREFIX):].split("_", 1)[0])]
    for name in gone:
        drop_database(name)
    return gone


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stat_database(name: str) -> dict:
    """pg_stat_database counters for one database (times in milliseconds)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, blks_read, blks_hit, tup_returned, tup_fetched, tup_inserted,"
            " tup_updated, tup_deleted, blk_read_time, blk_write_time, session_time, active_time,"
            " idle_in_transaction_time, sessions FROM pg_stat_database WHERE datname = %s", (name,)).fetchone()
        cols = ["xact_commit", "xact_rollback", "blks_read", "blks_hit", "tup_returned", "tup_fetched",
                "tup_inserted", "tup_updated", "tup_deleted", "blk_read_time_ms", "blk_write_time_ms",
                "session_time_ms", "active_time_ms", "idle_in_transaction_time_ms", "sessions"]
    return {c: float(v or 0) for c, v in zip(cols, row or [0] * len(cols), strict=True)}


TABLE_COUNTERS = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


def stat_tables(url: str) -> dict[str, dict[str, int]]:
    """pg_stat_user_tables' write counters, by table, of the database at `url` (the view is per database)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(f"SELECT relname, {', '.join(TABLE_COUNTERS)} FROM pg_stat_user_tables").fetchall()
    return {row[0]: dict(zip(TABLE_COUNTERS, (int(v or 0) for v in row[1:]), strict=True)) for row in rows}


def settled_stats(url: str, name: str, timeout: float = 20.0,
                  wait_for_backends: bool = True) -> tuple[dict, dict, dict]:
    """(pg_stat_database, pg_stat_user_tables, how it settled) of database `name`: once its backends
    have gone (`wait_for_backends`), and when two reads of the table counters 0.5 s apart agree.

    PostgreSQL 15 backends keep their counters in local memory and flush them at most once a second
    at a transaction's end, when idle for a while, and at exit (before they leave pg_stat_activity):
    read while a worker still holds its connections, the counters lag by up to a second of writes.
    The caller ends every process that wrote (the worker, beat, its own pool) first; this waits for
    their backends to exit. pg_stat_database is read first, through the admin database: each read of
    pg_stat_user_tables is a session of `name` itself (one commit and one session in its counters).
    """
    import time

    started = time.perf_counter()
    left = 0
    if wait_for_backends:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            while backend_pids(conn, name) and time.perf_counter() - started < timeout:
                time.sleep(0.2)
            left = len(backend_pids(conn, name))
    database = stat_database(name)
    tables, previous, reads = stat_tables(url), None, 1
    while tables != previous and time.perf_counter() - started < timeout:
        time.sleep(0.5)
        previous, tables = tables, stat_tables(url)
        reads += 1
    return database, tables, {"backends_left": left, "table_reads": reads, "stable": tables == previous,
                              "waited_s": round(time.perf_counter() - started, 2)}


def table_writes_per_message(before: dict, after: dict, n: int, tables: tuple[str, ...]) -> dict:
    """Per message: each counter's delta for `tables`, every user table together (`total`), and the
    tables that changed at all (`by_table`, raw deltas)."""
    deltas = {t: {c: after.get(t, {}).get(c, 0) - before.get(t, {}).get(c, 0) for c in TABLE_COUNTERS}
              for t in set(before) | set(after)}
    total = {c: sum(d[c] for d in deltas.values()) for c in TABLE_COUNTERS}

    def per(d: dict) -> dict:
        out = {c: round(d[c] / n, 4) for c in TABLE_COUNTERS}
        out["writes"] = round((d["n_tup_ins"] + d["n_tup_upd"] + d["n_tup_del"]) / n, 4)
        out["non_hot_upd"] = round((d["n_tup_upd"] - d["n_tup_hot_upd"]) / n, 4)
        return out

    zero = dict.fromkeys(TABLE_COUNTERS, 0)
    return {**{t: per(deltas.get(t, zero)) for t in tables}, "total": per(total),
            "by_table": {t: d for t, d in sorted(deltas.items()) if any(d.values())}}


def backend_pids(conn: psycopg.Connection, name: str) -> list[int]:
    return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,))]


def service(name: str) -> ModuleType:
    """The service module `name` of whichever layout the imported `newsletter` has."""
    for path in SERVICES[name]:
        try:
            return importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if not exc.name or not path.startswith(exc.name):
                raise  # a missing dependency inside the module, not a module of another layout
    raise ModuleNotFoundError(f"none of {SERVICES[name]} in {importlib.import_module('newsletter').__file__}")


def migrate(env: dict[str, str], app_root: Path = ROOT) -> None:
    """`flask db upgrade` with the code (and so the migrations) at `app_root`; the bench's venv."""
    done = subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "wsgi", "db", "upgrade"], cwd=app_root, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def make_audience(n: int) -> int:
    """One single-opt-in list with `n` confirmed members; returns the list id (inside an app context)."""
    from sqlalchemy import insert, select

    from newsletter.extensions import db
    from newsletter.models import MailingList, OptIn, Subscriber, SubscriberStatus, Subscription, SubscriptionStatus
    from newsletter.models.base import utcnow

    mailing_list = MailingList(name="Bench list", opt_in=OptIn.SINGLE)
    db.session.add(mailing_list)
    db.session.flush()
    now = utcnow()
    cities = ["Berlin", "Köln", "Paris", "Lisboa", "Oslo", "Zürich", "Kraków", "Madrid"]
    for start in range(0, n, CHUNK):
        db.session.execute(insert(Subscriber), [
            {"email": f"r{i:07d}@example.com", "name": f"Person {i}", "attributes": {"city": cities[i % 8]},
             "status": SubscriberStatus.CONFIRMED, "created_at": now, "updated_at": now, "confirmed_at": now}
            for i in range(start, min(n, start + CHUNK))])
    ids = db.session.scalars(select(Subscriber.id).order_by(Subscriber.id)).all()  # a fresh database: all ours
    for start in range(0, len(ids), CHUNK):
        db.session.execute(insert(Subscription), [
            {"subscriber_id": i, "list_id": mailing_list.id, "status": SubscriptionStatus.CONFIRMED,
             "created_at": now, "updated_at": now} for i in ids[start:start + CHUNK]])
    db.session.commit()
    return mailing_list.id


def make_campaign(list_id: int) -> int:
    """The bench campaign, tracked as BENCH_TRACKING says (send_bench.py --tracking)."""
    from newsletter.models import Campaign

    values = dict(name="Bench campaign", subject=SUBJECT, from_name="Ünïcode Sender", from_email="news@example.com",
                  html=HTML, list_ids=[list_id])
    tracking = os.environ.get("BENCH_TRACKING", "default")
    if tracking != "default" and hasattr(Campaign, "tracking"):  # older code has no tracking: it sends untracked
        values["tracking"] = tracking
    return service("campaigns").create(**values).id


def make_api_key() -> str:
    from newsletter.models import Role

    return service("api_keys").create_api_key("bench", Role.MARKETER)[1]


def sample_message(campaign_id: int) -> dict:
    """Build one message exactly as a worker would (first subscriber) and return its size and parts.

    Uses the send engine's internals (read-only); if they moved, falls back to a 3 KB estimate.
    """
    from sqlalchemy import select

    from newsletter.extensions import db
    from newsletter.models import Campaign, Subscriber

    try:
        campaign_send = service("campaign_send")
        recipient_context = service("campaign_context").recipient_context
        campaign = db.session.get(Campaign, campaign_id)
        person = db.session.scalars(select(Subscriber).order_by(Subscriber.id).limit(1)).one()
        entry = campaign_send.prepared(campaign)
        envelope = campaign_send.build_envelope(entry, 1, person.id, person.email, person.name,
                                                person.attributes)
        rendered = entry.compiled.render(recipient_context(entry.fields, entry.list_ids, person.id, person.email,
                                                           person.name, person.attributes))
        template = {k: getattr(rendered, k).replace(person.name, "%NAME%") for k in ("subject", "text", "html")}
        return {"bytes": len(envelope.data), "template": template, "source": "platform build_envelope"}
    except Exception as exc:  # the engine is being edited concurrently: keep the bench usable
        return {"bytes": 3000, "template": {"subject": "Spring news for %NAME%", "text": "Hello %NAME%\n" * 60,
                                            "html": "<p>Hello %NAME%</p>\n" * 60},
                "source": f"fallback ({type(exc).__name__}: {exc})"}


DKIM_KINDS = {"rsa": [("rsa", 2048)], "rsa3072": [("rsa", 3072)], "ed25519": [("ed25519", 256)],
              "rsa+ed25519": [("rsa", 2048), ("ed25519", 256)]}


def make_dkim_keys(kind: str) -> list[str]:
    """Active DKIM keys for the bench campaign's From domain (send_bench.py --dkim); their DNS names."""
    from newsletter.models import DkimAlgorithm
    from newsletter.services.deliverability import dkim

    names = []
    for n, (algorithm, bits) in enumerate(DKIM_KINDS[kind]):
        key = dkim.generate("example.com", selector=f"bench{n}", algorithm=DkimAlgorithm(algorithm), bits=bits)
        dkim.activate(key.id)
        names.append(key.record_name)
    return names


def signing_cost(campaign_id: int, kind: str, rounds: int = 500) -> dict:
    """Build the first subscriber's message `rounds` times, then sign it as many times with keys of `kind`
    (in memory: nothing is stored): µs a message, build and signature apart, in this process."""
    import time

    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from sqlalchemy import select

    from newsletter.extensions import db
    from newsletter.models import Campaign, DkimAlgorithm, Subscriber
    from newsletter.services.deliverability import dkim

    campaign_send = service("campaign_send")
    campaign = db.session.get(Campaign, campaign_id)
    person = db.session.scalars(select(Subscriber).order_by(Subscriber.id).limit(1)).one()
    entry = campaign_send.prepared(campaign)
    started = time.perf_counter()
    for _ in range(rounds):
        envelope = campaign_send.build_envelope(entry, 1, person.id, person.email, person.name, person.attributes)
    build_us = (time.perf_counter() - started) / rounds * 1e6
    signers = [dkim.Signer("example.com", f"s{n}", DkimAlgorithm(algorithm),
                           rsa.generate_private_key(public_exponent=65537, key_size=bits) if algorithm == "rsa"
                           else ed25519.Ed25519PrivateKey.generate())
               for n, (algorithm, bits) in enumerate(DKIM_KINDS[kind])]
    started = time.perf_counter()
    for _ in range(rounds):
        dkim.sign_bytes(envelope.data, signers)
    sign_us = (time.perf_counter() - started) / rounds * 1e6
    return {"kind": kind, "message_bytes": len(envelope.data), "build_us": round(build_us, 1),
            "sign_us": round(sign_us, 1), "sign_over_build": round(sign_us / build_us, 2)}


def platform_env(db_url: str, redis_url: str, instance: Path, smtp_port: int, secret: str,
                 knobs: dict[str, str], app_root: Path = ROOT) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "BASELINE_"))}
    env.update({
        "PYTHONPATH": str(app_root),  # the worker, beat and `flask db upgrade` import this tree's newsletter
        "DATABASE_URL": db_url, "REDIS_URL": redis_url, "NEWSLETTER_ENV": "production",
        "SECRET_KEY": secret, "INSTANCE_PATH": str(instance), "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(smtp_port), "BASE_URL": "http://127.0.0.1:5000", "SEND_RATE": "1000000",
    })
    env.update({k: str(v) for k, v in knobs.items()})
    return env
