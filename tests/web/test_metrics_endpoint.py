"""GET /metrics through the Flask test client: who may read it, what it says, how it caches."""
from __future__ import annotations

import io
import threading

import pytest
from kombu import Exchange, Queue
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.models import BounceType, NotificationKind
from newsletter.services import monitoring
from newsletter.services.audience import imports
from newsletter.services.deliverability import bounces
from newsletter.services.notifications import one_off
from newsletter.services.webhooks import webhook_deliveries, webhooks
from tests.services.test_webhooks import Receiver
from tests.support.metrics import parse, scrape, value
from tests.support.net import wait_for

OUTSIDER = "198.51.100.7"  # documentation range: only ever a string in a request's environ
TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
def fresh(app):
    """Scrape-time gauges read on every scrape (no cache) during the test."""
    saved = app.config["METRICS_CACHE_SECONDS"], app.config["METRICS_TOKEN"]
    app.config["METRICS_CACHE_SECONDS"] = 0
    yield app
    app.config["METRICS_CACHE_SECONDS"], app.config["METRICS_TOKEN"] = saved


def test_loopback_may_read_it_and_others_get_403(client, fresh):
    assert client.get("/metrics").status_code == 200  # the test client comes from 127.0.0.1
    refused = client.get("/metrics", environ_overrides={"REMOTE_ADDR": OUTSIDER})
    assert refused.status_code == 403
    assert "newsletter_" not in refused.get_data(as_text=True)
    assert client.get("/metrics", environ_overrides={"REMOTE_ADDR": "::1"}).status_code == 200


def test_a_bearer_token_opens_it_from_anywhere_a_wrong_one_does_not(client, fresh):
    fresh.config["METRICS_TOKEN"] = TOKEN
    outside = {"REMOTE_ADDR": OUTSIDER}
    assert client.get("/metrics", environ_overrides=outside,
                      headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/metrics", environ_overrides=outside,
                      headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 403
    assert client.get("/metrics", environ_overrides=outside).status_code == 403
    fresh.config["METRICS_TOKEN"] = ""
    assert client.get("/metrics", environ_overrides=outside, headers={"Authorization": "Bearer "}).status_code == 403


def test_behind_the_proxy_the_forwarded_client_is_the_one_checked(client, fresh):
    """TRUSTED_PROXIES=1, as the Procfile runs it (the ProxyFix `register_proxy` installs)."""
    original = fresh.wsgi_app
    fresh.wsgi_app = ProxyFix(original, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    saved = fresh.config["METRICS_ALLOWED_NETWORKS"]
    fresh.config["METRICS_ALLOWED_NETWORKS"] = ["10.20.0.0/16"]
    try:
        # The proxy itself is on loopback; what counts is the client it names (the last hop it adds).
        assert client.get("/metrics", headers={"X-Forwarded-For": OUTSIDER}).status_code == 403
        assert client.get("/metrics", headers={"X-Forwarded-For": "10.20.3.4"}).status_code == 200
        # A client cannot smuggle an allowed address in front of its own.
        assert client.get("/metrics", headers={"X-Forwarded-For": f"10.20.3.4, {OUTSIDER}"}).status_code == 403
        # Without the proxy's header the direct peer (loopback) is not in these networks.
        assert client.get("/metrics").status_code == 403
    finally:
        fresh.wsgi_app = original  # type: ignore[method-assign]
        fresh.config["METRICS_ALLOWED_NETWORKS"] = saved


def test_a_bounce_recorded_in_this_process_moves_its_counter_by_one(client, fresh):
    labels = {"type": "soft", "source": "api", "result": "recorded"}
    before = value(parse(scrape(client)), "newsletter_bounce_reports_total", **labels)
    with fresh.app_context():
        assert bounces.record(bounces.BounceReport(BounceType.SOFT, "api", email="gone@example.com")).status \
            == "recorded"
        assert bounces.record(bounces.BounceReport(BounceType.SOFT, "api", delivery_id=987654)).status \
            == "unmatched"
    after = parse(scrape(client))
    assert value(after, "newsletter_bounce_reports_total", **labels) == before + 1
    assert value(after, "newsletter_bounce_reports_total", type="soft", source="api", result="unmatched") >= 1


def test_scrape_time_gauges_cover_every_state_and_say_they_worked(client, fresh):
    samples = parse(scrape(client))
    for state in ("pending", "queued", "sending", "committing", "sent", "failed", "cancelled"):
        assert ("newsletter_ledger_rows", frozenset({("ledger", "deliveries"), ("state", state)})) in samples
    for queue in ("default", "transactional", "bulk"):
        assert ("newsletter_queue_depth", frozenset({("queue", queue)})) in samples
    assert value(samples, "newsletter_state_up", source="database") == 1
    assert value(samples, "newsletter_state_up", source="broker") == 1
    assert ("newsletter_campaigns", frozenset({("status", "sending")})) in samples


def test_queue_depth_is_the_brokers_count(client, fresh, monkeypatch):
    """Three messages published to a queue nobody consumes (the real broker, read by a passive declare)."""
    name = "metrics-test-queue"
    queue = Queue(name, Exchange("newsletter", type="direct"), routing_key=name)
    celery = fresh.extensions["celery"]
    for _ in range(3):
        celery.send_task("newsletter.tasks.nothing", queue=queue)
    monkeypatch.setattr(monitoring, "QUEUES", (name,))  # which queues to read; the broker is real
    try:  # RabbitMQ routes a publish asynchronously: the count may lag it by a moment
        wait_for(lambda: value(parse(scrape(client)), "newsletter_queue_depth", queue=name) >= 3, 10, 0.1,
                 "the broker to count the three messages")
        assert value(parse(scrape(client)), "newsletter_queue_depth", queue=name) == 3
    finally:
        with celery.connection_for_write() as connection:
            queue(connection.default_channel).delete()


def test_readings_are_cached_for_metrics_cache_seconds(client, fresh):
    first = value(parse(scrape(client)), "newsletter_ledger_rows", ledger="notifications", state="queued")
    fresh.config["METRICS_CACHE_SECONDS"] = 3600  # the reading just taken now stands for an hour
    with fresh.app_context():
        one_off.queue(NotificationKind.TEST_EMAIL, "cached@example.com", "Hi", "<p>Hi</p>", "Hi")
    assert value(parse(scrape(client)), "newsletter_ledger_rows", ledger="notifications", state="queued") == first
    fresh.config["METRICS_CACHE_SECONDS"] = 0
    assert value(parse(scrape(client)), "newsletter_ledger_rows", ledger="notifications", state="queued") \
        == first + 1


def test_an_import_counts_its_rows_by_result(client, fresh):
    before = parse(scrape(client))
    with fresh.app_context():
        job = imports.start(io.BytesIO(b"email,name\na@example.com,A\nb@example.com,B\nnot-an-address,C\n"
                                       b"a@example.com,A again\n"), "people.csv")
        job = imports.run(job.id)
        assert (job.created, job.invalid, job.duplicates) == (2, 1, 1)
    after = parse(scrape(client))
    moved = {result: value(after, "newsletter_import_rows_total", result=result)
             - value(before, "newsletter_import_rows_total", result=result)
             for result in ("created", "invalid", "duplicates", "updated")}
    assert moved == {"created": 2, "invalid": 1, "duplicates": 1, "updated": 0}


def test_webhook_posts_count_by_outcome(client, fresh):
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    receiver.fail_first = 1  # the first POST gets a 500: retried, then delivered
    before = parse(scrape(client))
    try:
        with fresh.app_context():
            endpoint = webhooks.create(receiver.url, "metrics receiver", ("subscriber.created",))
            webhook_deliveries.send_test(endpoint.id)

            def delivered() -> bool:
                webhook_deliveries.deliver_due()  # the session's beat may run it too: counted either way
                return len(receiver.requests) >= 2 and all(
                    d.status.value == "delivered" for d in webhook_deliveries.log(endpoint.id)[0])

            wait_for(delivered, 30, 0.2, "the webhook to be delivered on its second attempt")
    finally:
        receiver.shutdown()
        receiver.server_close()
    after = parse(scrape(client))
    moved = {outcome: value(after, "newsletter_webhook_deliveries_total", outcome=outcome)
             - value(before, "newsletter_webhook_deliveries_total", outcome=outcome)
             for outcome in ("delivered", "retried", "failed")}
    assert moved == {"delivered": 1, "retried": 1, "failed": 0}


def test_a_batch_of_bounces_moves_the_counter_once_per_report(client, fresh):
    labels = {"type": "soft", "source": "mailbox", "result": "recorded"}
    before = value(parse(scrape(client)), "newsletter_bounce_reports_total", **labels)
    with fresh.app_context():
        results = bounces.record_many([bounces.BounceReport(BounceType.SOFT, "mailbox", email=f"batch{i}@example.com",
                                                            event_id=f"<batch-{i}@mx>") for i in range(3)])
    assert [r.status for r in results] == ["recorded"] * 3
    assert value(parse(scrape(client)), "newsletter_bounce_reports_total", **labels) == before + 3
