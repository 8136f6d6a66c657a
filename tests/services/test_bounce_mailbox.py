"""The bounce mailbox against a real IMAP server (dovecot on loopback): what is recorded, where
each message is filed, and that each is acted on once with two pollers or a killed one."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from newsletter.extensions import db
from newsletter.models import Bounce, BounceType, SubscriberStatus
from newsletter.services.deliverability import dsn, mailbox, verp
from tests.pipeline.conftest import make_audience
from tests.services.test_bounces import sent_campaign, subscriber
from tests.support.imap import DovecotServer

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bounces"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def imap_server():
    server = DovecotServer().start()
    yield server
    server.stop()


@pytest.fixture
def ctx(app, imap_server, monkeypatch):
    monkeypatch.setitem(app.config, "BOUNCE_MAILBOX_URL", imap_server.url)
    with app.app_context():
        yield app


def _unique_message_id(raw: bytes, old: bytes) -> bytes:
    return raw.replace(old, f"<{uuid.uuid4().hex}@mx.example.net>".encode(), 1)


def hard_dsn(return_path: str, recipient: str) -> bytes:
    """flufl/dsn_13.txt (5.1.1, a real Exchange DSN) sent back to `return_path` about `recipient`."""
    raw = (CORPUS / "flufl/dsn_13.txt").read_bytes()
    raw = raw.replace(b"wed_ride-bounces@grizz.org", return_path.encode()).replace(b"userx@example.com",
                                                                                   recipient.encode())
    return _unique_message_id(raw, b"<yORps7Tdj00009030@DUBCONN01.cahapps.net>")


def soft_bounce(return_path: str, recipient: str) -> bytes:
    """flufl/qmail_06.txt (a qmail "Disk Quota Exceeded" in plain text)."""
    raw = (CORPUS / "flufl/qmail_06.txt").read_bytes()
    raw = raw.replace(b"fishads-bounces@lists.xxx.com", return_path.encode()).replace(b"ntl@xxx.com",
                                                                                      recipient.encode())
    return _unique_message_id(raw, b"<200902131732.n1DHWlOA007588@mail.turners.com>")


def complaint(return_path: str, recipient: str) -> bytes:
    """sisimai/arf-05.eml (an ARF abuse report) about `recipient`, sent to `return_path`."""
    raw = (CORPUS / "sisimai/arf-05.eml").read_bytes()
    raw = raw.replace(b"To: no-reply@abusix.org", f"To: {return_path}".encode())
    raw = raw.replace(b"fake.rcpt@example.com", recipient.encode())
    return _unique_message_id(raw, b"1y6Hkr-3SHLw0-L0-ARF")


def bounce_rows() -> list[Bounce]:
    db.session.expire_all()
    return list(db.session.scalars(select(Bounce).order_by(Bounce.id)))


def test_bounces_and_complaints_are_recorded_and_filed(ctx, imap_server):
    list_id, emails = make_audience(4, prefix="mbx")
    campaign_id, deliveries = sent_campaign(list_id)
    verp_of = {e: verp.return_path("d", deliveries[e]) for e in emails}
    auto_reply = (CORPUS / "sisimai/rfc3834-02.eml").read_bytes()
    imap_server.deliver(hard_dsn(verp_of[emails[0]], emails[0]), soft_bounce(verp_of[emails[1]], emails[1]),
                        complaint(verp_of[emails[2]], emails[2]), auto_reply,
                        hard_dsn("someone-else@example.net", "stranger@example.net"))

    assert mailbox.poll() == {"Processed": 3, "Ignored": 1, "Unmatched": 1}

    assert imap_server.folders() == {"INBOX": 0, "Processed": 3, "Ignored": 1, "Unmatched": 1}
    assert subscriber(emails[0]).status == SubscriberStatus.BOUNCED
    assert subscriber(emails[1]).status == SubscriberStatus.CONFIRMED  # one soft bounce: counted only
    assert subscriber(emails[2]).status == SubscriberStatus.COMPLAINED
    assert subscriber(emails[3]).status == SubscriberStatus.CONFIRMED
    rows = {row.email: row for row in bounce_rows()}
    assert {e: (r.type, r.delivery_id, r.source) for e, r in rows.items()} == {
        emails[0]: (BounceType.HARD, deliveries[emails[0]], "mailbox"),
        emails[1]: (BounceType.SOFT, deliveries[emails[1]], "mailbox"),
        emails[2]: (BounceType.COMPLAINT, deliveries[emails[2]], "mailbox")}
    assert rows[emails[0]].status_code == "5.1.1" and rows[emails[0]].event_id.endswith("@mx.example.net>")
    assert "Quota" in rows[emails[1]].diagnostic
    # Filed, not deleted: the messages are intact in their folders.
    assert b"Automatic reply: Nyaan" in imap_server.messages("Ignored")[0]
    assert sorted(m.count(b"@mx.example.net>") for m in imap_server.messages("Processed")) == [1, 1, 1]
    assert mailbox.poll() == {}  # nothing left


def test_the_real_corpus_through_the_mailbox(ctx, imap_server):
    """Every real message: bounces and complaints naming nobody we know go to Unmatched, the
    auto-replies and people's replies to Ignored; nothing is recorded, nothing lost."""
    expected = {name: entry["verdict"] for name, entry in
                __import__("json").loads((CORPUS / "expected.json").read_text()).items()}
    imap_server.deliver(*[(CORPUS / name).read_bytes() for name in expected])
    counts = mailbox.poll(batch_size=40)
    bounces_expected = sum(v in (dsn.BOUNCE, dsn.COMPLAINT) for v in expected.values())
    assert counts == {"Unmatched": bounces_expected, "Ignored": len(expected) - bounces_expected}
    assert imap_server.folders()["INBOX"] == 0
    assert bounce_rows() == []


def test_without_move_the_fallback_copies_flags_and_expunges_only_those(app, monkeypatch):
    server = DovecotServer(advertise_move=False).start()
    try:
        monkeypatch.setitem(app.config, "BOUNCE_MAILBOX_URL", server.url)
        with app.app_context():
            list_id, emails = make_audience(1, prefix="nomove")
            _, deliveries = sent_campaign(list_id)
            server.deliver(hard_dsn(verp.return_path("d", deliveries[emails[0]]), emails[0]),
                           (CORPUS / "sisimai/rfc3834-01.eml").read_bytes())
            # A message someone else flagged \Deleted stays where it is: no plain EXPUNGE.
            conn = server.session()
            conn.select("INBOX")
            conn.append("INBOX", r"(\Deleted)", None, b"Subject: flagged by a person\r\n\r\nkeep\r\n")
            conn.logout()
            assert mailbox.poll() == {"Processed": 1, "Ignored": 1}
            assert subscriber(emails[0]).status == SubscriberStatus.BOUNCED
        assert server.folders() == {"INBOX": 1, "Processed": 1, "Ignored": 1}
        assert b"flagged by a person" in server.messages("INBOX")[0]
    finally:
        server.stop()


@pytest.mark.parametrize("lease_lost", [False, True], ids=["lease-held", "lease-lost"])
def test_two_pollers_racing_act_on_each_message_once(ctx, imap_server, app, monkeypatch, lease_lost):
    """Two pollers at once: the lease lets one in; and should both run anyway (a slow poller's
    lease ran out under it), the event ids keep each message recorded once."""
    if lease_lost:
        monkeypatch.setattr(mailbox.Lease, "acquire", lambda self: True)
        monkeypatch.setattr(mailbox.Lease, "renew", lambda self: True)
    list_id, emails = make_audience(150, prefix="race")
    _, deliveries = sent_campaign(list_id)
    imap_server.deliver(*[hard_dsn(verp.return_path("d", deliveries[e]), e) for e in emails])
    results: list[dict] = []
    errors: list[BaseException] = []

    def poller() -> None:
        try:
            poll_until_empty()
        except BaseException as exc:  # noqa: B036  (reported below, not lost in the thread)
            errors.append(exc)

    def poll_until_empty() -> None:
        with app.app_context():
            while True:
                got = mailbox.poll(batch_size=10)
                results.append(got)
                if not got:
                    return
                if "busy" in got:
                    time.sleep(0.01)

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    total = Counter()
    for got in results:
        total.update({k: v for k, v in got.items() if k != "busy"})
    if lease_lost:  # both may have read a message; each filed it, one recorded it
        assert total["Processed"] >= 150 and set(total) == {"Processed"}
    else:
        assert total == {"Processed": 150}
    rows = bounce_rows()
    assert len(rows) == 150 and len({r.event_id for r in rows}) == 150
    assert Counter(r.delivery_id for r in rows) == Counter(deliveries.values())
    assert imap_server.folders()["INBOX"] == 0
    filed = [re.search(rb"(?m)^Message-ID: (\S+)", m).group(1) for m in imap_server.messages("Processed")]
    assert len(set(filed)) == 150
    if not lease_lost:
        assert len(filed) == 150
    # With the lease lost, both sessions may MOVE a message before either sees the other's
    # expunge, and the server then files a second copy: recorded once, filed twice, never lost.


def test_a_poller_killed_mid_batch_leaves_each_message_acted_on_once(ctx, imap_server, platform_env):
    """SIGKILL a poller (its own process) after it recorded a batch it had not moved yet: the
    next poll re-reads those, finds them recorded (duplicates), and only moves them."""
    list_id, emails = make_audience(1500, prefix="kill")
    _, deliveries = sent_campaign(list_id)
    imap_server.deliver(*[hard_dsn(verp.return_path("d", deliveries[e]), e) for e in emails])
    # The poller kills itself at the worst moment: its second batch committed, not yet moved.
    script = textwrap.dedent("""
        import os, signal
        from newsletter import create_app
        from newsletter.services.deliverability import mailbox

        move, moves = mailbox.imap.Mailbox.move, []

        def dying_move(box, uids, folder):
            moves.append(folder)
            if len(moves) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return move(box, uids, folder)

        mailbox.imap.Mailbox.move = dying_move
        with create_app().app_context():
            mailbox.poll(batch_size=500)
    """)
    env = {**platform_env, "BOUNCE_MAILBOX_URL": imap_server.url}
    process = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, timeout=300)
    assert process.returncode == -signal.SIGKILL
    recorded_before, folders = _count(), imap_server.folders()
    assert (recorded_before, folders["INBOX"]) == (1000, 1000), "killed after two batches were recorded, one moved"
    # Its lease would run out within LEASE_SECONDS; drop it now rather than wait.
    redis.Redis.from_url(ctx.config["REDIS_URL"]).delete(mailbox.Lease(
        mailbox.imap.parse_url(imap_server.url).name).key)

    again = mailbox.poll()

    assert again == {"Processed": folders["INBOX"]}
    rows = bounce_rows()
    assert len(rows) == 1500 and len({r.event_id for r in rows}) == 1500
    assert imap_server.folders() == {"INBOX": 0, "Processed": 1500}


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Bounce))


def test_parallel_pollers_each_take_their_part(ctx, imap_server):
    list_id, emails = make_audience(20, prefix="parts")
    _, deliveries = sent_campaign(list_id)
    imap_server.deliver(*[hard_dsn(verp.return_path("d", deliveries[e]), e) for e in emails])
    first = mailbox.poll(0, 2)
    assert first == {"Processed": 10} and imap_server.folders()["INBOX"] == 10
    assert mailbox.poll(0, 2) == {}  # part 0 has nothing left; part 1's messages are not its own
    assert mailbox.poll(1, 2) == {"Processed": 10}
    assert len(bounce_rows()) == 20 and imap_server.folders() == {"INBOX": 0, "Processed": 20}


def test_a_busy_mailbox_is_left_to_the_poller_holding_it(ctx, imap_server):
    lease = mailbox.Lease(mailbox.imap.parse_url(imap_server.url).name)
    assert lease.acquire()
    try:
        imap_server.deliver((CORPUS / "sisimai/rfc3834-01.eml").read_bytes())
        assert mailbox.poll() == {"busy": 1}
        assert imap_server.folders()["INBOX"] == 1
    finally:
        lease.release()
    assert mailbox.poll() == {"Ignored": 1}


def test_without_a_mailbox_url_the_poll_does_nothing(app, monkeypatch):
    monkeypatch.setitem(app.config, "BOUNCE_MAILBOX_URL", "")
    with app.app_context():
        assert mailbox.poll() == {"disabled": 1}


def test_a_wrong_password_fails_the_poll_and_frees_the_lease(ctx, imap_server, monkeypatch):
    monkeypatch.setitem(ctx.config, "BOUNCE_MAILBOX_URL", re.sub(r":[^:@/]+@", ":wrong@", imap_server.url))
    with pytest.raises(Exception, match="(?i)authenticat"):
        mailbox.poll()
    monkeypatch.setitem(ctx.config, "BOUNCE_MAILBOX_URL", imap_server.url)
    assert mailbox.poll() == {}  # the failed poll released its lease
