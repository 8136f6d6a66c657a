"""Sending servers end to end: pools of real SMTP servers (one RecordingSmtpServer each), the real
worker, beat, Redis and database. Each test ends with every message delivered exactly once, and
asserts where the messages went and the state the servers left in Redis, never on timing."""
from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Delivery, DeliveryAttempt, Notification, SendingServer, Subscriber
from newsletter.sending import pools
from newsletter.sending.limiter import KEY
from newsletter.services import settings, versioned
from newsletter.services.delivery import servers
from newsletter.services.notifications import notifications
from tests.pipeline.conftest import (
    assert_exactly_once,
    assert_totals_match_ledger,
    make_audience,
    make_campaign,
    start,
    wait_until_status,
)
from tests.support.net import free_port, wait_for
from tests.support.smtp import RecordingSmtpServer

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def smtp_servers(tmp_path):
    """Start real SMTP servers on free ports: `make()` or `make(login=(user, password))`."""
    started: list[RecordingSmtpServer] = []

    def make(**options) -> RecordingSmtpServer:
        server = RecordingSmtpServer(str(tmp_path / f"outbox-{len(started)}"), **options).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def unique(prefix: str) -> str:
    """Server and pool names of their own per test: the workers' copy of the table may lag a
    cleanup (the tables are emptied between tests without telling them)."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def add_server(pool: str, port: int, **values) -> str:
    name = values.pop("name", None) or unique("s")
    servers.save({"name": name, "pool": pool, "host": "127.0.0.1", "port": port, "tls": "none", **values})
    return name


def where(emails: list[str], *smtp_servers: RecordingSmtpServer) -> list[int]:
    """How many of `emails` each server received."""
    return [sum(len(s.handler.received.get(e, [])) for e in emails) for s in smtp_servers]


def penalty(ctx, name: str) -> float:
    shared = pools.state(ctx.config["REDIS_URL"])
    return shared.limiter(pools.Server(name, "", servers.builtin().smtp), 1000).penalty()


def send_to_pool(ctx, pool: str, n: int, prefix: str) -> tuple[int, list[str]]:
    list_id, emails = make_audience(n, prefix=prefix)
    campaign_id = make_campaign([list_id], pool=pool)
    start(ctx, campaign_id)
    return campaign_id, emails


def test_a_pool_of_two_spreads_a_campaign_over_both_each_message_once(ctx, worker, beat, smtp_server, smtp_servers):
    a, b = smtp_servers(), smtp_servers()
    pool = unique("pair")
    add_server(pool, a.port)
    add_server(pool, b.port)
    campaign_id, emails = send_to_pool(ctx, pool, 300, "pp")
    wait_until_status(campaign_id, "sent")

    on_a, on_b = where(emails, a, b)
    assert on_a + on_b == 300 and on_a >= 30 and on_b >= 30, (on_a, on_b)  # both took a real share
    combined = {e: a.handler.received.get(e, []) + b.handler.received.get(e, []) for e in emails}
    assert {e: len(v) for e, v in combined.items() if len(v) != 1} == {}
    assert where(emails, smtp_server.server) == [0]  # nothing through the Settings page's server
    assert assert_totals_match_ledger(campaign_id).sent == 300


def test_a_server_down_from_the_start_leaves_everything_to_the_other_without_spending_attempts(
        ctx, worker, beat, smtp_server, smtp_servers):
    up = smtp_servers()
    pool = unique("failover")
    dead = add_server(pool, free_port())  # nothing listens there
    up_name = add_server(pool, up.port)
    campaign_id, emails = send_to_pool(ctx, pool, 150, "fo")
    wait_until_status(campaign_id, "sent")

    assert_exactly_once(up.handler, emails)
    db.session.rollback()
    rows = db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
    # Failover happened inside the batches: no message needed a second attempt.
    assert {(r.status.value, r.attempts) for r in rows} == {("sent", 1)}
    assert db.session.scalar(select(DeliveryAttempt.id).where(DeliveryAttempt.status != "sent")) is None
    # The dead server really was tried, found down and left (its mark itself expires within seconds).
    shared = pools.state(ctx.config["REDIS_URL"])
    assert shared.failures(dead) >= 1 and shared.failures(up_name) == 0


def test_a_server_answering_421_is_slowed_while_the_other_keeps_its_rate(ctx, worker, beat, smtp_server,
                                                                          smtp_servers):
    slow, fast = smtp_servers(), smtp_servers()
    refused = {"n": 0}

    def throttle(rcpt: str, attempt: int) -> str | None:
        if refused["n"] < 12:  # "a while": its first dozen messages
            refused["n"] += 1
            return "421 4.7.0 Too many messages, slow down"
        return None

    slow.handler.rule = throttle
    pool = unique("throttle")
    slow_name = add_server(pool, slow.port, per_second=40)
    fast_name = add_server(pool, fast.port, per_second=40)
    global_penalty = f"{KEY}:penalty"
    campaign_id, emails = send_to_pool(ctx, pool, 300, "th")
    wait_until_status(campaign_id, "sent")

    # Up to a dozen were refused: how many depends on how soon the workers moved the rest to the
    # other server, which is the behaviour under test, so the count is not fixed (it was 4 in a busy run).
    assert 1 <= refused["n"] <= 12
    combined = {e: slow.handler.received.get(e, []) + fast.handler.received.get(e, []) for e in emails}
    assert {e: len(v) for e, v in combined.items() if len(v) != 1} == {}
    on_slow, on_fast = where(emails, slow, fast)
    assert on_fast > 2 * on_slow, (on_slow, on_fast)  # the throttled server took far fewer
    # The throttle state: the slowed server's own rate is lowered (recovering over minutes), the
    # other's is untouched, and the cluster-wide ceiling was never penalised.
    assert penalty(ctx, slow_name) < 1.0  # lowered, and recovering over minutes
    assert penalty(ctx, fast_name) == 1.0
    assert pools.state(ctx.config["REDIS_URL"]).client.get(global_penalty) is None
    db.session.rollback()
    throttled = db.session.scalars(select(Delivery).where(Delivery.campaign_id == campaign_id,
                                                          Delivery.attempts > 1)).all()
    assert len(throttled) == refused["n"]  # each refused message was retried once, and delivered
    assert assert_totals_match_ledger(campaign_id).sent == 300


def test_a_domain_throttle_caps_every_window_whichever_server_sends(ctx, worker, beat, smtp_server, smtp_servers):
    a, b = smtp_servers(), smtp_servers()
    pool = unique("domains")
    add_server(pool, a.port)
    add_server(pool, b.port)
    domain = f"{uuid.uuid4().hex[:8]}.example"
    shared = pools.state(ctx.config["REDIS_URL"])
    settings.save({"DOMAIN_THROTTLES": f"{domain}=15/s"}, None)
    try:
        time.sleep(versioned.CHECK_EVERY * 1.5)  # every worker has looked at the settings' version since
        list_id, emails = make_audience(60, prefix="dt")
        others = emails[:20]
        throttled = [e.replace("@example.com", f"@{domain}") for e in emails[20:]]
        for old, new in zip(emails[20:], throttled, strict=True):
            db.session.execute(update(Subscriber).where(Subscriber.email == old).values(email=new))
        db.session.commit()
        campaign_id = make_campaign([list_id], pool=pool)
        start(ctx, campaign_id)
        wait_until_status(campaign_id, "sent")
    finally:
        settings.save({"DOMAIN_THROTTLES": None}, None)

    delivered = others + throttled
    combined = {e: a.handler.received.get(e, []) + b.handler.received.get(e, []) for e in delivered}
    assert {e: len(v) for e, v in combined.items() if len(v) != 1} == {}
    windows = shared.domain_counts(domain)
    # Every one-second window of the domain held at most 15 messages, all 40 were counted, so the
    # throttle really spread them over several windows; the other domain was never counted.
    assert windows and max(windows.values()) <= 15, windows
    assert sum(windows.values()) == 40 and len(windows) >= 3, windows
    assert shared.domain_counts("example.com") == {}


def test_each_server_logs_in_with_its_own_credentials(ctx, worker, beat, smtp_server, smtp_servers):
    locked = smtp_servers(login=("relay-user", "s3cret pass"))
    pool = unique("auth")
    name = add_server(pool, locked.port, username="relay-user", password="s3cret pass")
    db.session.rollback()
    row = db.session.scalar(select(SendingServer).where(SendingServer.name == name))
    assert "s3cret" not in row.password_encrypted  # stored encrypted
    assert servers.verify(row.id) is None
    wrong = add_server(unique("auth-wrong"), locked.port, username="relay-user", password="wrong")
    db.session.rollback()
    wrong_id = db.session.scalar(select(SendingServer.id).where(SendingServer.name == wrong))
    assert "535" in (servers.verify(wrong_id) or "")

    campaign_id, emails = send_to_pool(ctx, pool, 40, "au")
    wait_until_status(campaign_id, "sent")
    assert_exactly_once(locked.handler, emails)
    assert set(locked.logins) == {"relay-user"}


def test_notifications_go_out_through_the_notify_pool(ctx, transactional_worker, beat, smtp_server, smtp_servers):
    tx = smtp_servers()
    pool = unique("tx")
    add_server(pool, tx.port)
    settings.save({"NOTIFY_POOL": pool}, None)
    try:
        time.sleep(versioned.CHECK_EVERY * 1.5)  # every worker has looked at the settings' version since
        sent = []
        for i in range(5):
            notification, _ = notifications.accept({"to": {"email": f"np{i}@example.com"}, "subject": "Hi",
                                                    "text": "Hello"})
            ctx.extensions["celery"].send_task("newsletter.tasks.notifications.send_notification",
                                               args=[notification.id])
            sent.append(notification.email)
        wait_for(lambda: all(tx.handler.received.get(e) for e in sent), 30, message="the notifications")
    finally:
        settings.save({"NOTIFY_POOL": None}, None)
    assert_exactly_once(tx.handler, sent)
    assert where(sent, smtp_server.server) == [0]
    db.session.rollback()
    assert {n.status.value for n in db.session.scalars(select(Notification))} == {"sent"}
