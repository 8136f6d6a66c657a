"""Outgoing webhooks end to end: a real HTTP receiver, a real worker and beat, a real database."""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select, update

from newsletter.extensions import db
from newsletter.models import ConsentSource, OptIn, Webhook, WebhookDelivery, WebhookDeliveryStatus
from newsletter.models.base import utcnow
from newsletter.services.audience import imports, lists, subscribers, subscriptions
from newsletter.services.errors import ValidationError
from newsletter.services.webhooks import webhook_deliveries, webhooks
from tests.pipeline.conftest import start_sending, wait_until_status
from tests.support.net import wait_for


class Receiver(ThreadingHTTPServer):
    """Records every POST; answers 500 to the first `fail_first` of them, else `reply` if set."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.fail_first = 0
        self.reply: tuple[int, dict[str, str], bytes] | None = None  # status, headers, body
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/hook"

    def bodies(self, event: str | None = None) -> list[dict]:
        with self.lock:
            return [json.loads(r["body"]) for r in self.requests if event in (None, r["headers"]["X-Newsletter-Event"])]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802  (the http.server naming)
        server: Receiver = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        with server.lock:
            server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                    "at": time.monotonic()})
            failing = len(server.requests) <= server.fail_first
        status, headers, answer = server.reply or (200, {}, b"ok thanks")
        if failing:
            status, headers, answer = 500, {}, b"receiver says no"
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def hook(url: str, *events: str, active: bool = True) -> Webhook:
    return webhooks.create(url, "test receiver", events, active=active)


def deliveries_of(webhook_id: int) -> list[WebhookDelivery]:
    db.session.rollback()
    return list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
                                   .order_by(WebhookDelivery.id)))


def test_signature_verifies_with_the_derived_secret_and_a_tampered_body_does_not(ctx, worker, beat, receiver):
    endpoint = hook(receiver.url, "subscriber.created")
    secret = webhooks.secret_for(endpoint)
    person = subscribers.create("ana@example.com", name="Ana")
    wait_for(lambda: receiver.requests, 20, message="the webhook POST")

    request = receiver.requests[0]
    headers, body = request["headers"], request["body"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Newsletter-Event"] == "subscriber.created"
    fields = dict(part.split("=", 1) for part in headers["X-Newsletter-Signature"].split(","))
    assert abs(int(fields["t"]) - time.time()) < 60
    # What the README tells receivers to do, written out independently of the service code.
    expected = hmac.new(secret.encode(), f"{fields['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"])
    assert webhooks.verify(secret, body, headers["X-Newsletter-Signature"])
    tampered = body.replace("ana@example.com", "eve@example.com")
    assert tampered != body and not webhooks.verify(secret, tampered, headers["X-Newsletter-Signature"])
    assert not webhooks.verify(webhooks.secret_for(webhooks.rotate_secret(endpoint.id)), body,
                               headers["X-Newsletter-Signature"])
    assert not webhooks.verify(secret, body, headers["X-Newsletter-Signature"], now=time.time() + 3600)

    payload = json.loads(body)
    assert payload["id"] == int(headers["X-Newsletter-Delivery"])
    assert payload["event"] == "subscriber.created"
    assert payload["data"] == {"subscriber_id": person.id, "email": "ana@example.com", "name": "Ana",
                               "status": "confirmed", "source": "admin", "list_ids": []}
    wait_for(lambda: deliveries_of(endpoint.id)[0].status != WebhookDeliveryStatus.SENDING, 20,
             message="the recorded answer")
    row = deliveries_of(endpoint.id)[0]
    assert (row.status, row.attempts, row.response_code, row.response_body) == (
        WebhookDeliveryStatus.DELIVERED, 1, 200, "ok thanks")
    assert row.payload == body  # the stored text is exactly what was signed and sent


def test_a_receiver_failing_twice_gets_three_attempts_with_backoff(ctx, worker, beat, receiver):
    receiver.fail_first = 2
    endpoint = hook(receiver.url, "subscriber.created")
    subscribers.create("bo@example.com")
    wait_for(lambda: deliveries_of(endpoint.id)[0].status == WebhookDeliveryStatus.DELIVERED, 30,
             message="delivery after two failures")

    assert len(receiver.requests) == 3
    assert len({r["body"] for r in receiver.requests}) == 1  # the same event each time
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.requests, receiver.requests[1:], strict=False)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.3  # WEBHOOK_RETRY_BASE is 0.5 s in the tests, ±25% jitter
    row = deliveries_of(endpoint.id)[0]
    assert (row.attempts, row.response_code, row.error, row.claim) == (3, 200, "", None)
    assert row.delivered_at is not None


def test_out_of_attempts_fails_with_the_last_answer(ctx, worker, beat, receiver, app):
    receiver.fail_first = 1000
    endpoint = hook(receiver.url, "subscriber.created")
    person = subscribers.create("cy@example.com")
    # One attempt left: the next failure is final.
    db.session.execute(update(WebhookDelivery).values(attempts=app.config["WEBHOOK_MAX_ATTEMPTS"] - 1))
    db.session.commit()
    wait_for(lambda: deliveries_of(endpoint.id)[0].status == WebhookDeliveryStatus.FAILED, 20,
             message="the delivery to fail")
    row = deliveries_of(endpoint.id)[0]
    assert (row.response_code, row.response_body, row.error) == (500, "receiver says no",
                                                                 "HTTP 500 Internal Server Error")
    assert len(receiver.requests) == 1
    assert json.loads(receiver.requests[0]["body"])["data"]["subscriber_id"] == person.id


def test_events_nobody_listens_to_write_no_rows(ctx, receiver):
    hook(receiver.url, "delivery.sent")
    hook(receiver.url, "subscriber.created", active=False)
    subscribers.create("dee@example.com")
    assert webhooks.emit("subscriber.confirmed", {"x": 1}) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    with pytest.raises(ValueError):
        webhooks.emit("no.such.event", {})


def test_subscriber_created_confirmed_and_unsubscribed_fire(ctx, worker, beat, receiver):
    hook(receiver.url, "subscriber.created", "subscriber.confirmed", "subscriber.unsubscribed")
    weekly = lists.create(name="Weekly", opt_in=OptIn.DOUBLE, public=True)
    result = subscriptions.subscribe("Eve@Example.com", [weekly.id], source=ConsentSource.FORM, name="Eve")
    subscriptions.confirm(result.subscriber_id, [weekly.id])
    subscriptions.confirm(result.subscriber_id, [weekly.id])  # a second click changes nothing: no event
    subscriptions.unsubscribe(result.subscriber_id)
    wait_for(lambda: len(receiver.requests) >= 3, 20, message="three subscriber events")
    time.sleep(1.5)  # a negative check: room for a wrong fourth one to show up

    events = sorted(receiver.bodies(), key=lambda p: p["id"])
    assert [p["event"] for p in events] == ["subscriber.created", "subscriber.confirmed", "subscriber.unsubscribed"]
    created, confirmed, left = (p["data"] for p in events)
    assert (created["email"], created["status"], created["source"], created["list_ids"]) == (
        "eve@example.com", "unconfirmed", "form", [weekly.id])
    assert (confirmed["subscriber_id"], confirmed["status"], confirmed["list_ids"]) == (
        result.subscriber_id, "confirmed", [weekly.id])
    assert (left["status"], left["list_ids"], left["all_lists"]) == ("unsubscribed", [weekly.id], True)


def test_a_small_campaign_sends_one_delivery_event_per_recipient(ctx, worker, beat, receiver):
    endpoint = hook(receiver.url, "delivery.sent", "campaign.finished")
    campaign_id, emails = start_sending(ctx, 30, "wh")
    wait_until_status(campaign_id, "sent")
    wait_for(lambda: len(receiver.requests) >= 31, 30, message="31 webhook POSTs")
    time.sleep(1)  # a negative check: room for a wrong 32nd POST (a duplicate) to show up

    sent = receiver.bodies("delivery.sent")
    assert sorted(p["data"]["email"] for p in sent) == sorted(emails)
    assert {p["data"]["campaign_id"] for p in sent} == {campaign_id}
    assert {(p["data"]["status"], p["data"]["smtp_code"]) for p in sent} == {("sent", 250)}
    assert len({p["id"] for p in sent}) == 30
    [finished] = receiver.bodies("campaign.finished")
    assert finished["data"] | {"finished_at": None} == {
        "campaign_id": campaign_id, "name": "Spring news", "recipients": 30, "sent": 30, "failed": 0,
        "cancelled": 0, "finished_at": None}
    assert {d.status for d in deliveries_of(endpoint.id)} == {WebhookDeliveryStatus.DELIVERED}


def test_replay_sends_the_same_payload_again_as_a_new_delivery(ctx, worker, beat, receiver):
    endpoint = hook(receiver.url, "subscriber.created")
    subscribers.create("fay@example.com")
    wait_for(lambda: len(receiver.requests) == 1, 20, message="the first POST")
    first = deliveries_of(endpoint.id)[0]

    copy = webhook_deliveries.replay(endpoint.id, first.id)
    wait_for(lambda: len(receiver.requests) == 2, 20, message="the replayed POST")
    again = receiver.requests[1]
    assert again["body"] == receiver.requests[0]["body"]
    assert again["headers"]["X-Newsletter-Delivery"] == str(copy.id) != str(first.id)
    assert webhooks.verify(webhooks.secret_for(endpoint), again["body"], again["headers"]["X-Newsletter-Signature"])


def test_test_event_and_a_row_abandoned_in_sending_are_delivered(ctx, worker, beat, receiver):
    endpoint = hook(receiver.url, "campaign.finished")
    webhook_deliveries.send_test(endpoint.id)
    wait_for(lambda: len(receiver.requests) == 1, 20, message="the test event")
    assert receiver.bodies()[0]["event"] == "webhook.test"

    # A worker killed mid-POST leaves its row in `sending`: it goes back to pending and is sent.
    webhooks.write("campaign.finished", [endpoint.id], [{"campaign_id": 1}])
    long_ago = utcnow() - timedelta(seconds=webhook_deliveries.stale_after() + 5)
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.event == "campaign.finished").values(
        status=WebhookDeliveryStatus.SENDING, claim="dead-worker", attempts=1, updated_at=long_ago))
    db.session.commit()
    wait_for(lambda: len(receiver.requests) == 2, 20, message="the recovered delivery")
    # The receiver logs the POST before it answers; the worker records the answer after.
    wait_for(lambda: deliveries_of(endpoint.id)[-1].status != WebhookDeliveryStatus.SENDING, 20,
             message="the recorded answer")
    row = deliveries_of(endpoint.id)[-1]
    assert (row.status, row.attempts) == (WebhookDeliveryStatus.DELIVERED, 2)


def test_an_import_emits_one_created_event_per_new_subscriber_in_one_insert(ctx, receiver):
    endpoint = hook(receiver.url, "subscriber.created")
    subscribers.create("old@example.com")
    content = "email,name\nold@example.com,Old\nnew1@example.com,One\nnew2@example.com,Two\n"
    job = imports.start(io.BytesIO(content.encode()), "people.csv")
    imports.run(job.id)
    rows = deliveries_of(endpoint.id)
    assert [json.loads(r.payload)["data"]["email"] for r in rows] == ["old@example.com", "new1@example.com",
                                                                       "new2@example.com"]
    assert [json.loads(r.payload)["data"]["source"] for r in rows] == ["admin", "import", "import"]
    assert all(json.loads(r.payload)["id"] == r.id for r in rows)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "javascript:alert(1)", "example.com/hook", "https://", ""])
def test_only_http_and_https_urls_are_accepted(ctx, url):
    with pytest.raises(ValidationError) as refused:
        webhooks.create(url, events=["delivery.sent"])
    assert refused.value.field == "url"
    with pytest.raises(ValidationError) as refused:
        webhooks.create("https://example.com/hook", events=[])
    assert refused.value.field == "events"


def test_a_delivery_the_sweeper_assumes_sent_is_announced_too(ctx, receiver):
    """A worker that died after the final dot never records its send: the sweeper does, and
    listeners hear `delivery.sent` for it like any other."""
    from newsletter.models import Delivery, DeliveryStatus
    from newsletter.services.campaigns import recipients
    from newsletter.services.delivery import ledger as deliveries
    from tests.pipeline.conftest import make_audience, make_campaign

    listening = hook(receiver.url, "delivery.sent")
    list_id, emails = make_audience(1, prefix="assumed")
    campaign_id = make_campaign([list_id])  # a draft: the session's sweeper leaves its campaign alone
    recipients.snapshot(campaign_id)
    stale = utcnow() - timedelta(minutes=30)
    db.session.execute(update(Delivery).where(Delivery.campaign_id == campaign_id)
                       .values(status=DeliveryStatus.COMMITTING, claim="dead-batch", updated_at=stale))
    db.session.commit()
    deliveries.recover_stale(claim_timeout=60, queued_timeout=60)
    row = db.session.scalar(select(Delivery).where(Delivery.campaign_id == campaign_id))
    assert row.status == DeliveryStatus.SENT
    events = [json.loads(d.payload) for d in deliveries_of(listening.id)]
    assert [(e["event"], e["data"]["delivery_id"], e["data"]["email"]) for e in events] == [
        ("delivery.sent", row.id, emails[0])]


# The address policy (issue 12: SSRF). Only 127.0.0.1 ever receives anything. The tests take
# `app` too: its fixture empties the tables after them.

PROBE_URLS = ["http://169.254.169.254/latest/meta-data/", "http://[::ffff:a9fe:a9fe]/", "http://2852039166/",
              "http://metadata.google.internal/computeMetadata/v1/", "http://10.0.0.1:6379", "http://127.1/",
              "http://localhost/hook", "http://user:secret@hooks.example.com/"]


def _app_allowing(allowed: list[str]):
    from newsletter import create_app

    return create_app({"WEBHOOK_ALLOWED_NETWORKS": allowed, "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"})


@pytest.fixture(scope="module")
def strict_app(platform_env):
    """The default: no allow-list at all, whatever the test settings give the workers."""
    return _app_allowing([])


@pytest.fixture(scope="module")
def loopback_app(platform_env):
    return _app_allowing(["127.0.0.1/32"])


def send_now(webhook_id: int, attempts: int = 1) -> WebhookDelivery:
    """Write a test event already claimed by this test (the session's workers never see it
    pending), then POST and record it here, in this app's configuration."""
    token = uuid.uuid4().hex
    webhooks.write(webhooks.TEST_EVENT, [webhook_id], [{"message": "hello"}])
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id,
                                                     WebhookDelivery.status == WebhookDeliveryStatus.PENDING)
                       .values(status=WebhookDeliveryStatus.SENDING, claim=token, attempts=attempts))
    db.session.commit()
    row = db.session.scalar(select(WebhookDelivery).where(WebhookDelivery.claim == token))
    claimed = webhook_deliveries.Claimed(row.id, row.webhook_id, row.event, row.payload, row.attempts)
    webhook_deliveries.record(webhook_deliveries.send([claimed]), token)
    db.session.rollback()
    return db.session.get(WebhookDelivery, row.id)


def test_saving_refuses_internal_receivers_unless_allow_listed(app, strict_app, loopback_app, receiver):
    with strict_app.app_context():
        for url in PROBE_URLS + [receiver.url]:
            with pytest.raises(ValidationError) as refused:
                webhooks.create(url, events=["delivery.sent"])
            assert refused.value.field == "url", url
        assert "169.254.169.254 is a link-local address" in _refusal(PROBE_URLS[0])
        assert "WEBHOOK_ALLOWED_NETWORKS" in _refusal(receiver.url)
        assert "127.0.0.1 is a loopback address" in _refusal(receiver.url)
        assert "user names and passwords" in _refusal(PROBE_URLS[-1])
        saved = webhooks.create("https://hooks.example.com/in", events=["delivery.sent"])
        with pytest.raises(ValidationError):
            webhooks.update_webhook(saved.id, "http://[::ffff:a9fe:a9fe]/", events=["delivery.sent"])
        db.session.rollback()
        assert [w.url for w in webhooks.all_webhooks()] == ["https://hooks.example.com/in"]
    with loopback_app.app_context():
        assert webhooks.create(receiver.url, events=["delivery.sent"]).url == receiver.url
        for url in (u for u in PROBE_URLS if u != "http://127.1/"):  # 127.1 is 127.0.0.1: allowed
            with pytest.raises(ValidationError):
                webhooks.create(url, events=["delivery.sent"])


def _refusal(url: str) -> str:
    with pytest.raises(ValidationError) as refused:
        webhooks.create(url, events=["delivery.sent"])
    return refused.value.message


def test_a_loopback_receiver_is_refused_at_send_time_without_the_allow_list(app, strict_app, receiver):
    """Endpoints saved before the policy (or by hand) are checked again at every send."""
    with strict_app.app_context():
        by_address = Webhook(url=receiver.url, events=["delivery.sent"], secret_salt="a", active=True)
        by_name = Webhook(url=f"http://localhost:{receiver.server_port}/hook", events=["delivery.sent"],
                          secret_salt="b", active=True)
        db.session.add_all([by_address, by_name])
        db.session.commit()
        for endpoint, reason in ((by_address, "127.0.0.1 is a loopback address."),
                                 (by_name, "localhost is this machine.")):
            row = send_now(endpoint.id)
            # Refused for good: failed on its first attempt, never retried, the reason on the row.
            assert (row.status, row.attempts, row.response_code, row.next_attempt_at) == (
                WebhookDeliveryStatus.FAILED, 1, None, None)
            assert row.error == f"Refused, not sent: {reason}"
    assert receiver.requests == []


def test_an_allow_listed_loopback_receiver_gets_the_signed_request(app, loopback_app, receiver):
    with loopback_app.app_context():
        endpoint = webhooks.create(receiver.url, events=["delivery.sent"])
        row = send_now(endpoint.id)
        assert (row.status, row.response_code, row.response_body, row.error) == (
            WebhookDeliveryStatus.DELIVERED, 200, "ok thanks", "")
        [request] = receiver.requests
        assert request["path"] == "/hook" and request["body"] == row.payload
        assert request["headers"]["Host"] == f"127.0.0.1:{receiver.server_port}"
        assert webhooks.verify(webhooks.secret_for(endpoint), request["body"],
                               request["headers"]["X-Newsletter-Signature"])


def test_only_a_short_text_excerpt_of_a_reply_is_kept_and_redirects_are_not_followed(app, loopback_app, receiver):
    with loopback_app.app_context():
        endpoint = webhooks.create(receiver.url, events=["delivery.sent"])
        last = loopback_app.config["WEBHOOK_MAX_ATTEMPTS"]  # a failure is then final: no worker retries it
        receiver.reply = (500, {"Content-Type": "text/html"}, b"<script>alert(1)</script>\x1b[31m\x00" + b"x" * 5000)
        row = send_now(endpoint.id, attempts=last)
        assert row.response_body == ("<script>alert(1)</script> [31m " + "x" * 200)[:200]
        assert (row.status, row.error) == (WebhookDeliveryStatus.FAILED, "HTTP 500 Internal Server Error")

        receiver.reply = (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n" + bytes(3000))
        assert send_now(endpoint.id).response_body == "(image/png reply not shown)"

        receiver.reply = (302, {"Location": receiver.url.replace("/hook", "/elsewhere")}, b"")
        row = send_now(endpoint.id, attempts=last)
        assert row.error == "HTTP 302 Found (redirects are not followed)"
        assert [r["path"] for r in receiver.requests] == ["/hook"] * 3
