"""/api/v1/notifications: accepted, rendered and sent exactly once through the transactional lane."""
from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from newsletter.extensions import db
from newsletter.models import Notification, Suppression, SuppressionReason
from newsletter.models.base import utcnow
from tests.support.net import wait_for

PROBLEM = "application/problem+json"
RESET = {"to": "ada@example.com", "subject": "Reset your password, {{ name }}",
         "html": "<p>Hello {{ name }}, <a href='{{ link }}'>reset</a></p>",
         "data": {"name": "Ada", "link": "https://example.com/r/1"}}


def wait_status(api, notification_id: int, status: str, timeout: float = 30) -> dict:
    def current() -> dict | None:
        body = api.get(f"/api/v1/notifications/{notification_id}").get_json()
        return body if body["status"] == status else None
    return wait_for(current, timeout, 0.1, f"notification {notification_id} to be {status}")


def message_to(smtp_server, address: str) -> email.message.EmailMessage:
    raw = wait_for(lambda: smtp_server.received.get(address), 30, 0.05, f"a message to {address}")
    assert len(raw) == 1
    return email.message_from_bytes(raw[0], policy=email.policy.default)


def test_a_notification_is_rendered_sent_once_and_reported(api, worker, smtp_server):
    accepted = api.post("/api/v1/notifications", json=RESET)
    assert accepted.status_code == 202, accepted.get_json()
    body = accepted.get_json()
    assert body["status"] == "queued" and body["to"] == "ada@example.com"

    done = wait_status(api, body["id"], "sent")
    assert (done["attempts"], done["smtp_code"]) == (1, 250) and done["sent_at"] and done["created_at"]
    message = message_to(smtp_server, "ada@example.com")
    assert message["Subject"] == "Reset your password, Ada"
    assert message["X-Newsletter-Notification"] == str(body["id"])
    assert "List-Unsubscribe" not in message  # transactional, not marketing
    assert "Hello Ada" in message.get_body(("html",)).get_content()
    assert "Hello Ada" in message.get_body(("plain",)).get_content()  # text made from the HTML


def test_a_template_rendered_with_data_and_errors_name_the_field(api, worker, smtp_server):
    template = api.post("/api/v1/templates", json={
        "name": "receipt", "subject": "Receipt {{ order }}", "text": "Total: {{ total }} for {{ order }}"}).get_json()

    sent = api.post("/api/v1/notifications", json={"to": "bob@example.com", "template_id": template["id"],
                                                   "data": {"order": "A-1", "total": "9.50 EUR"}})
    assert sent.status_code == 202
    message = message_to(smtp_server, "bob@example.com")
    assert message["Subject"] == "Receipt A-1"
    assert message.get_body(("plain",)).get_content().strip() == "Total: 9.50 EUR for A-1"

    def refused(body: dict) -> str:
        response = api.post("/api/v1/notifications", json=body)
        assert response.status_code == 422 and response.mimetype == PROBLEM, response.get_json()
        return response.get_json()["errors"][0]["field"]

    assert refused({"to": "bob@example.com", "template_id": template["id"], "data": {"order": "A-2"}}) == "data"
    assert refused({"to": "bob@example.com", "template_id": 999999}) == "template_id"
    assert refused({**RESET, "html": "{% for x in %}"}) == "html"
    assert refused({**RESET, "subject": "{{ ''.__class__ }}"}) == "subject"
    assert refused({"to": "bob@example.com", "html": "<p>no subject</p>"}) == "subject"
    assert refused({"to": "bob@example.com", "subject": "no body"}) == "html"
    assert refused({**RESET, "to": "not an address"}) == "to"
    assert refused({**RESET, "to": {"subscriber_id": 999999}}) == "to"
    assert refused({**RESET, "to": {"id": 1}}) == "to"
    assert refused({**RESET, "data": ["not", "an", "object"]}) == "data"


def test_idempotency_key_replays_the_same_notification_and_refuses_another_body(api, api_key, client, worker,
                                                                               smtp_server):
    headers = {"Idempotency-Key": "reset-ada-1"}
    first = api.post("/api/v1/notifications", json=RESET, headers=headers)
    again = api.post("/api/v1/notifications", json=dict(reversed(list(RESET.items()))), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]

    other = api.post("/api/v1/notifications", json={**RESET, "data": {"name": "Eve", "link": "x"}}, headers=headers)
    assert other.status_code == 409 and other.mimetype == PROBLEM
    assert other.get_json()["errors"][0]["field"] == "Idempotency-Key"

    # Keys belong to the API key that used them.
    second_key = {"Authorization": f"Bearer {api_key('marketer')}", **headers}
    elsewhere = client.post("/api/v1/notifications", json=RESET, headers=second_key)
    assert elsewhere.status_code == 202 and elsewhere.get_json()["id"] != first.get_json()["id"]

    wait_status(api, first.get_json()["id"], "sent")
    wait_status(api, elsewhere.get_json()["id"], "sent")
    assert api.post("/api/v1/notifications", json=RESET, headers=headers).get_json()["status"] == "sent"
    wait_for(lambda: len(smtp_server.received["ada@example.com"]) >= 2, 10)
    assert len(smtp_server.received["ada@example.com"]) == 2  # one per notification, none for the replays

    bad = api.post("/api/v1/notifications", json=RESET, headers={"Idempotency-Key": "x" * 201})
    assert bad.status_code == 422 and bad.get_json()["errors"][0]["field"] == "Idempotency-Key"


def test_unsubscribes_do_not_block_but_bounces_and_complaints_do(app, api, worker, smtp_server):
    with app.app_context():
        db.session.add_all([Suppression(email="left@example.com", reason=SuppressionReason.UNSUBSCRIBED_ALL),
                            Suppression(email="bounced@example.com", reason=SuppressionReason.HARD_BOUNCE),
                            Suppression(email="angry@example.com", reason=SuppressionReason.COMPLAINT)])
        db.session.commit()
    assert api.post("/api/v1/notifications", json={**RESET, "to": "left@example.com"}).status_code == 202
    for address in ("bounced@example.com", "Angry@Example.com"):
        refused = api.post("/api/v1/notifications", json={**RESET, "to": address})
        assert refused.status_code == 422 and refused.get_json()["errors"][0]["field"] == "to"
    message_to(smtp_server, "left@example.com")


def test_to_a_subscriber_by_id(app, api, worker, smtp_server):
    from newsletter.services.audience import lists, subscribers

    with app.app_context():
        news = lists.create("News", "single")
        person = subscribers.create("grace@example.com", name="Grace", list_ids=[news.id])
        subscriber_id = person.id
    accepted = api.post("/api/v1/notifications", json={"to": {"subscriber_id": subscriber_id},
                                                       "subject": "Hi {{ subscriber.name }}", "text": "Hello"})
    assert accepted.status_code == 202 and accepted.get_json()["to"] == "grace@example.com"
    assert message_to(smtp_server, "grace@example.com")["Subject"] == "Hi Grace"


def test_451_is_retried_and_550_fails_with_its_code(api, worker, beat, smtp_server):
    smtp_server.rule = lambda rcpt, attempt: ("451 4.3.0 Try later" if rcpt == "later@example.com" and attempt == 1
                                              else "550 5.1.1 No such user" if rcpt == "nobody@example.com" else None)
    later = api.post("/api/v1/notifications", json={**RESET, "to": "later@example.com"}).get_json()["id"]
    nobody = api.post("/api/v1/notifications", json={**RESET, "to": "nobody@example.com"}).get_json()["id"]

    done = wait_status(api, later, "sent")  # retried by the sweeper after SEND_RETRY_BASE
    assert (done["attempts"], done["smtp_code"]) == (2, 250)
    failed = wait_status(api, nobody, "failed")
    assert (failed["attempts"], failed["smtp_code"]) == (1, 550) and "No such user" in failed["smtp_message"]
    assert len(smtp_server.received["later@example.com"]) == 1
    assert "nobody@example.com" not in smtp_server.received


def test_list_is_newest_first_with_a_cursor(api):
    ids = [api.post("/api/v1/notifications", json={**RESET, "to": f"p{i}@example.com"}).get_json()["id"]
           for i in range(5)]
    seen, cursor = [], None
    while True:
        body = api.get("/api/v1/notifications?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        seen += [item["id"] for item in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert seen == ids[::-1]
    assert api.get("/api/v1/notifications?status=bogus").status_code == 422
    assert api.get("/api/v1/notifications/999999").status_code == 404


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield app


def test_stale_claims_are_recovered_like_deliveries(ctx):
    from newsletter.services.notifications import notifications

    # Fresh rows, judged a minute from now: the session's beat sweeper (every second, with
    # the real clock) leaves them alone while this test moves them by hand.
    later = utcnow() + timedelta(seconds=60)
    rows = {status: Notification(email=f"{status}@example.com", subject="s", text="t", status=status,
                                 claim="gone", updated_at=utcnow())
            for status in ("sending", "committing", "queued")}
    db.session.add_all(rows.values())
    db.session.commit()
    ids = {status: row.id for status, row in rows.items()}

    assert notifications.recover_stale(claim_timeout=10, now=later) == {"assumed_sent": 1, "reclaimed": 1}
    db.session.expire_all()
    assert db.session.get(Notification, ids["committing"]).status.value == "sent"
    assert db.session.get(Notification, ids["sending"]).status.value == "queued"
    # Due now (the reclaimed one) and lost in the broker (queued too long) are published again, once.
    assert notifications.take_due(queued_timeout=30, now=later) == sorted([ids["sending"], ids["queued"]])
    assert notifications.take_due(queued_timeout=30, now=later) == []
    # A stale owner that comes back cannot fence a row it lost.
    from newsletter.services.delivery.fences import FenceLine

    line = FenceLine(Notification)
    assert line.fence(ids["sending"], "gone").acquire() is False
    line.close()
    db.session.execute(update(Notification).where(Notification.id == ids["queued"]).values(status="sending",
                                                                                          claim="mine"))
    db.session.commit()
    line = FenceLine(Notification)
    fence = line.fence(ids["queued"], "mine")
    assert fence.acquire() is True
    fence.commit_async()
    fence.confirm()
    line.close()
    db.session.rollback()
    assert db.session.scalar(select(Notification.status).where(Notification.id == ids["queued"])).value == "committing"


def test_final_outcomes_emit_webhook_events(app, api, worker, smtp_server):
    import json

    from newsletter.models import WebhookDelivery
    from newsletter.services.webhooks import webhooks

    with app.app_context():
        webhooks.create("http://127.0.0.1:9/hooks", events=["notification.sent", "notification.failed"])
    smtp_server.rule = lambda rcpt, attempt: "550 5.1.1 No such user" if rcpt == "nobody@example.com" else None
    sent = api.post("/api/v1/notifications", json=RESET).get_json()["id"]
    failed = api.post("/api/v1/notifications", json={**RESET, "to": "nobody@example.com"}).get_json()["id"]
    wait_status(api, sent, "sent")
    wait_status(api, failed, "failed")
    with app.app_context():
        events = {row.event: json.loads(row.payload) for row in db.session.scalars(select(WebhookDelivery))}
    assert set(events) == {"notification.sent", "notification.failed"}
    data = {event: body.get("data", body) for event, body in events.items()}
    assert (data["notification.sent"]["notification_id"], data["notification.sent"]["smtp_code"]) == (sent, 250)
    assert (data["notification.failed"]["notification_id"], data["notification.failed"]["smtp_code"]) == (failed, 550)
