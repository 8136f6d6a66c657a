"""Outbox bench: the development outbox's pages with 100,000 caught messages.

    .venv/bin/python bench/outbox_bench.py                    # 100,000 messages
    .venv/bin/python bench/outbox_bench.py --messages 20000   # a quicker look

1. A throwaway development instance (SQLite, the embedded Redis) and a Maildir in a temp folder.
2. Fills it with `--before` messages (3,700: the issue's "1.3 s at 3,700") of ~6 KB each (HTML and
   text, like a campaign), and times the list as it was before the index (sort every message by
   date, parse the newest 200) next to the page now.
3. Fills up to `--messages` and times, through the Flask test client signed in as an admin: the
   first index build (the index deleted first), the list page, the last page, searches by
   recipient, by subject and both, a search matching nothing, a message page, and the list page
   right after a message arrived: through the mail catcher's `outbox.deliver` (indexed as it is
   stored), and as a file put in the Maildir by other means (the folders changed: the sync lists them).

Writes bench/results/outbox-<date>-<commit>.json. Temp folders are removed on the way out.
"""
from __future__ import annotations

import argparse
import email
import email.policy
import json
import mailbox
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT)]

WORDS = ("weekly", "digest", "offer", "welcome", "update", "news", "spring", "launch", "report", "invite")


def log(message: str) -> None:
    print(f"[outbox] {message}", flush=True)


def timed(call, runs: int) -> dict:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1000)
    return {"ms_median": round(statistics.median(times), 2), "ms_min": round(min(times), 2),
            "ms_max": round(max(times), 2), "runs": runs}


def message_bytes(i: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Newsletter <news@example.org>"
    message["To"] = f"reader{i}@domain{i % 500}.example"
    message["Subject"] = f"{WORDS[i % 10].title()} {WORDS[(i // 10) % 10]} #{i}"
    message["Message-ID"] = f"<{i}.{secrets.token_hex(6)}@example.org>"
    paragraph = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20
    message.set_content(f"Hello reader {i},\n\n{paragraph}\n\nhttps://example.org/story/{i}\n")
    message.add_alternative(
        f"<!DOCTYPE html><html><head><title>Issue {i}</title></head><body><h1>Hello reader {i}</h1>"
        f"<p>{paragraph}</p><p><a href=\"https://example.org/story/{i}\">Read the story</a> · "
        f"<a href=\"https://example.org/unsubscribe/{i}\">Unsubscribe</a></p></body></html>", subtype="html")
    trace = f"X-Outbox-Mail-From: news@example.org\r\nX-Outbox-Rcpt-To: {message['To']}\r\n".encode()
    return trace + message.as_bytes()


def fill(directory: Path, start: int, stop: int) -> float:
    """Delivered as the catcher does (write in tmp/, rename into new/), from one composed template:
    composing 100,000 EmailMessages would time the email package, not the outbox."""
    template = message_bytes(987654321)
    t = time.perf_counter()
    for i in range(start, stop):
        name = f"{int(time.time())}.M{i}P{os.getpid()}Q{i}.bench"
        subject = f"{WORDS[i % 10].title()} {WORDS[(i // 10) % 10]} #".encode()
        (directory / "tmp" / name).write_bytes(template.replace(b"987654321", str(i).encode())
                                               .replace(b"domain321.example", f"domain{i % 500}.example".encode())
                                               .replace(b"Digest offer #", subject))
        os.rename(directory / "tmp" / name, directory / "new" / name)
    return time.perf_counter() - t


def list_before_the_index(directory: Path, limit: int = 200) -> list:
    """The outbox list as it was (services/outbox.py before the index), for comparison."""
    box = mailbox.Maildir(directory, create=False)
    keys = sorted(box.keys(), key=lambda k: box.get_message(k).get_date(), reverse=True)
    out = []
    for key in keys[:limit]:
        raw = box.get_message(key).as_bytes()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        out.append((key, str(parsed.get("Subject", ""))))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--before", type=int, default=3_700, help="where the old list is timed too")
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    started = time.perf_counter()
    load_at_start = [round(x, 2) for x in os.getloadavg()]  # a shared machine: say how busy it was
    instance = Path(tempfile.mkdtemp(prefix="nloutboxbench-"))
    maildir = instance / "outbox"
    redis_server = None
    try:
        os.environ.update({"NEWSLETTER_ENV": "development", "SECRET_KEY": secrets.token_urlsafe(48),
                           "INSTANCE_PATH": str(instance)})
        for name in ("DATABASE_URL", "REDIS_URL", "MAIL_SERVER"):
            os.environ.pop(name, None)
        from newsletter.devserver.embedded_redis import EmbeddedRedis

        redis_server = EmbeddedRedis(instance).start()
        from flask_migrate import upgrade

        from newsletter import create_app
        from newsletter.models import Role
        from newsletter.services import outbox
        from newsletter.services.accounts import users

        app = create_app()
        app.config["WTF_CSRF_ENABLED"] = False  # the bench signs in with a plain POST
        app.config["OUTBOX_DIR"] = str(maildir)
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            users.create_user("bench@example.com", "long enough password", Role.ADMIN)
        client = app.test_client()
        assert client.post("/login", data={"email": "bench@example.com",
                                           "password": "long enough password"}).status_code == 302

        def page(path: str):
            def get():
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
            return get

        outbox.open_outbox(maildir)
        fill_s = fill(maildir, 0, args.before)
        log(f"filled {args.before:,} in {fill_s:.1f} s")
        small = {"before the index: list (sort all, parse 200)": timed(lambda: list_before_the_index(maildir), 3)}
        (maildir / "index.sqlite3").unlink(missing_ok=True)
        t = time.perf_counter()
        page("/admin/outbox/")()
        small["now: first GET /admin/outbox/ (builds the index)"] = {"ms": round((time.perf_counter() - t) * 1000, 1)}
        small["now: GET /admin/outbox/ (index built first)"] = timed(page("/admin/outbox/"), args.runs)
        for label, figures in small.items():
            log(f"{args.before:,}: {label:55s} {figures}")

        fill_s += fill(maildir, args.before, args.messages)
        log(f"filled {args.messages:,} in {fill_s:.1f} s")
        size = sum(f.stat().st_size for f in (maildir / "new").iterdir())
        for path in (maildir / "index.sqlite3", maildir / "index.sqlite3-wal", maildir / "index.sqlite3-shm"):
            path.unlink(missing_ok=True)
        t = time.perf_counter()
        first = outbox.search(str(maildir))
        build_s = time.perf_counter() - t
        assert first.total == args.messages, first.total
        log(f"index built from scratch in {build_s:.1f} s")
        last_page = first.pages
        key = first.messages[0].key
        measured = {
            "GET /admin/outbox/ (newest 200)": page("/admin/outbox/"),
            f"GET /admin/outbox/?page={last_page} (last page)": page(f"/admin/outbox/?page={last_page}"),
            "GET ?to=reader4242 (recipient)": page("/admin/outbox/?to=reader4242"),
            "GET ?to=domain7.example (200 of ~200)": page("/admin/outbox/?to=domain7.example"),
            "GET ?subject=welcome (10% match)": page("/admin/outbox/?subject=welcome"),
            "GET ?to=domain7.&subject=offer (both)": page("/admin/outbox/?to=domain7.&subject=offer"),
            "GET ?subject=no-such-words (nothing)": page("/admin/outbox/?subject=no-such-words"),
            "GET /admin/outbox/<key> (message page)": page(f"/admin/outbox/{key}"),
            "service outbox.search() (no change, newest 200)": lambda: outbox.search(str(maildir)),
        }
        results = {}
        for label, call in measured.items():
            call()
            results[label] = timed(call, args.runs)
            log(f"{label:55s} median {results[label]['ms_median']:8.2f} ms")
        counter = iter(range(args.messages, args.messages + 2 * args.runs))
        box = mailbox.Maildir(maildir, create=False)
        arrivals = {  # the catcher indexes what it stores; a file put there otherwise makes the page re-list
            "caught by the mail catcher (outbox.deliver), then GET /admin/outbox/":
                lambda: outbox.deliver(maildir, message_bytes(next(counter))),
            "a file added to the Maildir by hand, then GET /admin/outbox/ (re-lists the folders)":
                lambda: box.add(message_bytes(next(counter))),
        }
        for label, arrive in arrivals.items():
            results[label] = timed(lambda arrive=arrive: (arrive(), page("/admin/outbox/")()), args.runs)
            log(f"{label:55s} median {results[label]['ms_median']:8.2f} ms")

        result = {"date": date.today().isoformat(), "at": datetime.now(UTC).isoformat(),
                  "load_average_at_start_and_end": [load_at_start, [round(x, 2) for x in os.getloadavg()]],
                  "commit": os.popen(f"git -C {ROOT} rev-parse --short HEAD").read().strip(),
                  "cores": os.cpu_count(), "messages": args.messages,
                  "maildir_mb": round(size / 1e6, 1), "fill_s": round(fill_s, 1),
                  f"at_{args.before}": small, "index_build_from_scratch_s": round(build_s, 1),
                  "index_mb": round((maildir / "index.sqlite3").stat().st_size / 1e6, 1),
                  "measured": results, "total_s": round(time.perf_counter() - started, 1)}
        out = BENCH / "results" / f"outbox-{result['date']}-{result['commit']}.json"
        out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"wrote {out}")
    finally:
        if redis_server is not None:
            redis_server.stop()
        shutil.rmtree(instance, ignore_errors=True)


if __name__ == "__main__":
    main()
